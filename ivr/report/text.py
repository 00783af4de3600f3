"""What the report says, in Korean (the default) and English (`--lang en`)."""

from __future__ import annotations

TEXT: dict[str, dict[str, str]] = {
    "ko": {
        "title": "외로움안녕120 운영 보고서",
        "period": "기간",
        "line": "회선",
        "all_lines": "전체",
        "generated": "작성",
        "synthetic": "합성 데이터 (시험용, 실제 통화 아님)",
        "contacts_per_day": "일별 연락 건수 (채널·회선별: phone 수신 전화, followup 후속 전화, "
        "chat 채팅 상담)",
        "arrivals_heatmap": "요일·시간대별 수신 전화 (서울 시간)",
        "answer_rates": "응답률과 포기율",
        "abandonment_by_wait": "대기 시간별 포기",
        "abandonment_by_wait_hour": "시간대별 포기와 인내 시간 (대기 시간별로 응답 전에 끊거나 "
        "다시 걸기를 요청한 분)",
        "abandonment_by_wait_hour_note": "인내 시간 = 그 시간대에 대기한 모든 초 ÷ 응답 전에 떠난 "
        "분의 수. 떠난 분이 10명 이상인 시간대는 자기 인내 시간으로 얼랑 A를 계산하고 (hour), "
        "나머지는 기간 전체의 값을 씁니다 (period).",
        "waits": "대기 시간 백분위수와 서비스 수준 (20초·60초 이내 응답)",
        "handle_times": "처리 시간 분포 (통화 + 후처리, 분)",
        "repeat_callers": "처음 전화한 분과 다시 전화한 분 (번호 없는 전화는 따로)",
        "repeat_callers.first_time": "처음 전화 (번호 있음)",
        "repeat_callers.repeat": "다시 전화 (번호 있음, 이전에 전화한 적 있음)",
        "repeat_callers.unknown": "알 수 없음 / 번호 없음 (발신번호 제한: 비율에서 제외)",
        "funnel": "메뉴 흐름 (5번 → 동의 질문 → 상담사 연결, 통화 건수)",
        "funnel.inbound": "수신 전화 전체",
        "funnel.pressed_5": "5번 선택 (외로움 상담 회선)",
        "funnel.consent_answered_yes_no": "동의 질문에 예 또는 아니요로 답함",
        "funnel.consent_not_answered": "동의 질문에 답 없음 (무응답, 또는 상담사가 먼저 받음)",
        "funnel.consented_not_withdrawn": "동의함 (철회하지 않음)",
        "funnel.consent_withdrawn": "동의 후 철회함 (통화 중 *6 또는 나중에 요청)",
        "funnel.reached_counselor": "상담사와 연결됨",
        "followups": "다시 걸기·후속 전화 요청과 처리",
        "callback_times": "다시 걸기까지 걸린 시간 (요청부터 완료까지, 시간)",
        "referrals": "분류별 기관 연계와 모니터링 결과",
        "companions": "동행 시리즈 통화 유지 (기간 중 예정된 통화)",
        "referrals.?": "? (목록에 없는 기관)",
        "silence_and_abuse": "침묵과 복지 확인, 폭언 종료와 제한",
        "chats": "채팅 상담 (상담사를 요청한 채팅: 대기, 응답, 결과, 처리 시간, 동의)",
        "chats_note": "안내 단계 = 채팅을 연 때부터 대기열에 들어갈 때까지 (버튼과 동의 질문), "
        "대기 = 대기열에 들어간 때부터 상담사가 받을 때까지, 서비스 수준 = 20초·60초 "
        "이내에 받은 채팅 ÷ 요청된 채팅, 처리 시간 = 받은 때부터 끝날 때까지 (분), 동의 비율 = "
        "대화 기록 보관에 동의하고 철회하지 않은 채팅의 비율.",
        "chats.offered": "요청된 채팅 (대기열)",
        "chats.answered": "상담사가 받은 채팅",
        "chats.abandoned_waiting": "대기 중에 떠난 채팅",
        "chats.answer_rate": "응답률",
        "chats.abandonment_rate": "포기율",
        "chats.abuse_endings": "폭언으로 종료",
        "chats.consent_share": "기록 보관 동의 비율",
        "chats.consent_withdrawn": "동의 철회",
        "chats.p50_guided_start_s": "안내 단계 (버튼과 동의 질문) 50% (초)",
        "chats.p90_guided_start_s": "안내 단계 (버튼과 동의 질문) 90% (초)",
        "workload": "상담사별 업무량 (관리자용, 순위 아님)",
        "workload_note": "관리자만 보는 표이며 순위가 아닙니다. 어려운 통화: 위기 상담 연결, 폭언 "
        "종료, 침묵 경보, 침묵 회선(복지 확인) 또는 40분 이상인 통화. 쉬지 않은 최장 시간: "
        "통화와 후처리가 10분 미만의 간격으로 이어지고 그 사이에 일시정지나 로그아웃이 없던 "
        "가장 긴 시간(분).",
        "endings": "통화가 끝난 단계 (단계별 평균 초)",
        "followup_endings": "후속 전화가 끝난 단계 (다시 걸기·복지 확인·모니터링·동행 전화, "
        "단계별 평균 초: 안내, 발신, 통화, 결과 입력, 마무리)",
        "staffing": "필요 상담사 수 (얼랑 C, 80%를 20초 이내) 대 근무표",
        "staffing_note": "빨강: 부족, 파랑: 여유. 얼랑 C는 포기를 고려하지 않습니다. 처리 시간 = "
        "통화 + 후처리 시간. 전화가 없던 시간에도 최소 1명이 필요합니다.",
        "staffing_erlang_a": "필요 상담사 수 (얼랑 A: 포기 포함, 80%를 20초 이내) 대 근무표",
        "staffing_erlang_a_note": "얼랑 A는 기다리다 끊는 분을 고려합니다. 인내 시간은 이 기간의 "
        "통화에서 잰 값입니다 (대기한 모든 초 ÷ 응답 전에 끊은 통화 수). 끊은 통화가 10건 미만이면 "
        "계산하지 않습니다. 빨강: 부족, 파랑: 여유 (얼랑 A 기준).",
        "weekday": "요일",
        "hour": "시",
        "calls": "건수",
        "needed": "필요",
        "rostered": "근무",
        "weekdays": "월,화,수,목,금,토,일",
        "satisfaction": "상담 후 만족도 조사 (회선별: 응답 수, 평균 점수 1–5, 점수 분포, "
        "도움 여부)",
        "satisfaction.all": "전체 회선",
        "score": "점수",
    },
    "en": {
        "title": "Loneliness Hotline 120 operations report",
        "period": "Period",
        "line": "Line",
        "all_lines": "all",
        "generated": "Generated",
        "synthetic": "SYNTHETIC data (for tests, not real calls)",
        "contacts_per_day": "Contacts per day (by channel and line: phone = inbound calls, "
        "followup = follow-up calls, chat = text chats)",
        "arrivals_heatmap": "Inbound arrivals by weekday and hour (Seoul time)",
        "answer_rates": "Answer and abandonment rates",
        "abandonment_by_wait": "Abandonment by time waited",
        "abandonment_by_wait_hour": "Abandonment and patience by hour of the day (callers who "
        "hung up or asked for a callback before an answer, by time waited)",
        "abandonment_by_wait_hour_note": "Patience = all seconds waited in that hour ÷ the "
        "callers who left unanswered. An hour with 10 or more who left uses its own patience for "
        "Erlang A (hour); the others use the period's (period).",
        "waits": "Wait percentiles and service level (answered within 20 s and 60 s)",
        "handle_times": "Handle time distribution (talk + wrap-up, minutes)",
        "repeat_callers": "First-time and repeat callers (calls without a number apart)",
        "repeat_callers.first_time": "First-time (number known)",
        "repeat_callers.repeat": "Repeat (number known, called before)",
        "repeat_callers.unknown": "Unknown / no number (withheld: not in the shares)",
        "funnel": "Menu funnel (pressed 5 → consent question → counselor), in calls",
        "funnel.inbound": "All inbound calls",
        "funnel.pressed_5": "Pressed 5 (loneliness line)",
        "funnel.consent_answered_yes_no": "Answered the consent question yes or no",
        "funnel.consent_not_answered": "Consent question not answered (silence, or a counselor "
        "answered first)",
        "funnel.consented_not_withdrawn": "Consented (not withdrawn)",
        "funnel.consent_withdrawn": "Consented, then withdrew (*6 during the call, or later on "
        "request)",
        "funnel.reached_counselor": "Reached a counselor",
        "followups": "Callbacks and follow-up calls requested and done",
        "callback_times": "Time to callback (request to done, hours)",
        "referrals": "Referrals by agency category and their monitoring outcome",
        "companions": "Companion series kept up (calls due in the period)",
        "referrals.주거": "housing (주거)",
        "referrals.식사": "meals (식사)",
        "referrals.건강": "health (건강)",
        "referrals.정신건강": "mental health (정신건강)",
        "referrals.일자리": "jobs (일자리)",
        "referrals.돌봄": "care (돌봄)",
        "referrals.법률": "legal (법률)",
        "referrals.?": "? (no longer in the catalog)",
        "silence_and_abuse": "Silences and welfare checks, abuse endings and flags",
        "chats": "Text chats (chats that asked for a counselor: waits, answers, outcomes, "
        "handle time, consent)",
        "chats_note": "Guided start = opened until queued (the buttons and the consent "
        "question); wait = queued until a counselor took it; service level = chats taken "
        "within 20 s / 60 s over chats offered; handle time = taken until ended (minutes); "
        "consent share = chats whose transcript may be kept (consent given, not withdrawn).",
        "chats.offered": "offered (queued)",
        "chats.answered": "answered by a counselor",
        "chats.abandoned_waiting": "abandoned while waiting",
        "chats.answer_rate": "answer rate",
        "chats.abandonment_rate": "abandonment rate",
        "chats.abuse_endings": "ended for abuse",
        "chats.consent_share": "consent share",
        "chats.consent_withdrawn": "consent withdrawn",
        "chats.p50_guided_start_s": "guided start (buttons and consent question), 50 % (s)",
        "chats.p90_guided_start_s": "guided start (buttons and consent question), 90 % (s)",
        "workload": "Workload per counselor (supervisor view, not a ranking)",
        "workload_note": "For the supervisor only, not a ranking. Hard calls: a crisis-line "
        "transfer, an abuse ending, a silence alert, a silent line (welfare check) or 40 minutes "
        "or longer. Longest stretch without a break: calls and wrap-ups following each other "
        "with gaps under 10 minutes and no pause or log-out between them (minutes).",
        "endings": "Where calls ended (mean seconds per stage)",
        "followup_endings": "Where follow-up calls ended (callbacks, welfare checks, monitoring, "
        "companion calls; mean seconds per stage: whisper, dialling, talk, outcome, goodbye)",
        "staffing": "Counselors needed (Erlang C, 80 % within 20 s) against the roster",
        "staffing_note": "Red: under-staffed, blue: over-staffed. Erlang C ignores abandonment; "
        "handle time = talk + wrap-up. At least one counselor every hour.",
        "staffing_erlang_a": "Counselors needed (Erlang A: with abandonment, 80 % within 20 s) "
        "against the roster",
        "staffing_erlang_a_note": "Erlang A counts the callers who hang up while waiting. The "
        "patience is measured from this period's calls (all seconds waited ÷ calls that left "
        "unanswered); not computed with fewer than 10 such calls. Red: under-staffed, blue: "
        "over-staffed (against Erlang A).",
        "weekday": "weekday",
        "hour": "hour",
        "calls": "calls",
        "needed": "needed",
        "rostered": "rostered",
        "weekdays": "Mon,Tue,Wed,Thu,Fri,Sat,Sun",
        "satisfaction": "Post-call satisfaction survey (per line: answers, average score 1-5, "
        "distribution, did it help)",
        "satisfaction.all": "All lines",
        "score": "score",
    },
}
