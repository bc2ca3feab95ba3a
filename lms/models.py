"""Imports every domain's models so SQLAlchemy and Alembic see the whole schema."""
from lms.accounts.models import Unit, User  # noqa: F401
from lms.courses.models import (Course, CourseAudience, CourseAuthor, CourseVersion, Lesson,  # noqa: F401
                                LessonProgress)
from lms.courses.lease import StudyLease  # noqa: F401
from lms.media.models import VideoAsset  # noqa: F401
from lms.quizzes.models import Choice, Question, Quiz, QuizAnswer, QuizAttempt  # noqa: F401
from lms.records.models import AuditLog, TrainingRecord  # noqa: F401
from lms.records.requirements import AnnualTarget, Requirement, RequirementUser  # noqa: F401
