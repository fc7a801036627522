"""Two-way referral, exam referral and appointment slots (双向转诊 / 转检 / 号源):
docs/referral.md."""
