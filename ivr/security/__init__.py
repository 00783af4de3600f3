"""Protecting the hotline: file permissions of personal data, and SIP authentication bans."""
