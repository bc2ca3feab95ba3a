"""知识竞赛 (issue 14, contests): an organiser's timed quiz contest over the questions of chosen courses.

An attempt draws N questions (and each question's choice order) once and stores the draw; questions
are served one at a time and the SERVER times each one (ContestAnswer.served_at): an answer after the
limit (+ a small grace for the network) scores zero, whatever the page's countdown said. The first
answer to a question is the one that counts. Rankings of people (first or best score, then less time)
and of units (participation rate, average score). 学时, when the organiser chose them, are credited once
into the ledger under the completion_key "contest:<id>:user:<uid>".
"""
