"""Imports every domain's models so SQLAlchemy and Alembic see the whole schema."""
from lms.accounts.models import Unit, User  # noqa: F401
from lms.courses.models import (Course, CourseAudience, CourseAuthor, CourseVersion, Lesson,  # noqa: F401
                                LessonProgress)
from lms.courses.lease import StudyLease  # noqa: F401
from lms.media.models import VideoAsset  # noqa: F401
from lms.quizzes.models import Choice, Question, Quiz, QuizAnswer, QuizAttempt  # noqa: F401
from lms.practices.models import Practice, PracticeProgress  # noqa: F401
from lms.records.models import AuditLog, TrainingRecord  # noqa: F401
from lms.records.rollups import LedgerCourseYear, LedgerUserYear  # noqa: F401  (kept by triggers, migration 0018)
from lms.records.closing import ClosedYear  # noqa: F401  (also: the closed-year check on every credit)
from lms.records.certificates import YearCertificate  # noqa: F401
from lms.records.requirements import AnnualTarget, Requirement, RequirementUser  # noqa: F401
from lms.records.export_jobs import ExportJob  # noqa: F401
from lms.activities.models import ActivityAttendance, ActivityAudience, OfflineActivity  # noqa: F401
from lms.classroom.models import HelpRequest  # noqa: F401  (请老师帮忙, migration 0024)
from lms.assessment.models import AssessmentAnswer, AssessmentItem, AssessmentPool, AssessmentSitting  # noqa: F401
from lms.contests.models import Contest, ContestAnswer, ContestAttempt, ContestAudience, ContestCourse, ContestUnit  # noqa: F401,E501
