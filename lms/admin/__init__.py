"""The programme console's home and navigation (issue 10).

Each domain owns its management views (units and people in lms/accounts, authoring in lms/courses and
lms/quizzes, videos in lms/media, …); this package only holds what they share: the layout
(`templates/admin/layout.html`), the navigation list (`navigation.py`), the role check
(`access.py`) and the console's home and audit-log pages.
"""
