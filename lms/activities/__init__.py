"""线下科普活动 (issue 11): offline activities and their attendance.

An organiser (admin, unit admin, or a teacher for the classes they manage) creates an activity for a
unit; its attendees are people of that unit's subtree and of its audiences. Attendance is taken three
ways — a rotating QR code scanned at the venue, a roster ticked on a tablet, an imported signed paper
list — and each credits through one function (services.credit_attendance): one append-only ledger
record per person and activity, guarded by the record's unique completion_key.
"""
