"""Quizzes: models, taking and grading."""
