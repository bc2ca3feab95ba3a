"""Search in Chinese: a Whoosh index (jieba words + character grams) kept in step with the database.

- analyzer.py  jieba set-up (once per process, quiet, cache under LMS_DATA_DIR) and the analyzers
- schema.py    the index schema and where the index lives
- index.py     update_courses(ids) / rebuild(): the only writers, one at a time across processes
- query.py     search(): all-terms-first ranking, published filter, audience first, snippets
- routes.py    GET /search (HTML, or JSON with Accept: application/json)
"""
