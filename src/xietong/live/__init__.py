"""Video sessions (视频会诊): scheduled or instant WebRTC sessions attached to a subject
(a consultation, a referral …), with a lobby, guest links and attendance (docs/live.md)."""
