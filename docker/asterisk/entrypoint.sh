#!/bin/sh
# Asterisk in its container (docker/asterisk/Containerfile). At every start: render the
# project's configuration for this instance with the settings from the environment (IVR120_*)
# and the secrets from the mounted file (IVR120_SECRETS_FILE; never in the image), lay out the
# instance's directories, and run Asterisk in the foreground as its own user.
set -eu
umask 077
base=/srv/ivr120/${IVR120_INSTANCE:-run}
moddir=/usr/lib/x86_64-linux-gnu/asterisk/modules
mkdir -p "$base/etc" "$base/lib" "$base/data" "$base/spool/recording" "$base/run" "$base/log"
rm -f "$base"/etc/*.conf
cd /tmp
PYTHONPATH=/opt/ivr120:/opt/ivr120/lib python3 -B -m ivr.pbx.cli render "$base/etc" \
    --moddir "$moddir" >/dev/null
for name in documentation rest-api static-http; do
    if [ -e "/usr/share/asterisk/$name" ]; then ln -sfn "/usr/share/asterisk/$name" "$base/data/$name"; fi
done
ln -sfn /usr/share/ivr120/sounds "$base/data/sounds"
chown -R asterisk:asterisk "$base"
exec asterisk -f -n -C "$base/etc/asterisk.conf" -U asterisk -G asterisk
