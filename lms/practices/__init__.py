"""练一练: hands-on phone practices attached to lessons (issue 15).

A practice is a list of steps, each a phone screen drawn by the project with one instruction and the
element(s) that count as a right tap. The server judges every tap and keeps each learner's step, so a
practice resumes on another tablet and is finished only when every step was done in order; a finished
practice counts for its lesson like a passed quiz (lms/courses/completion.py).
"""
