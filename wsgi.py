"""gunicorn entry point: `gunicorn wsgi:app`."""
import gc

# Start-up makes some 100,000 objects that live as long as the process, and no garbage cycles (measured:
# a collection right after finds none). The cyclic collector, set off again and again while they pile up,
# would cost ~50 ms of start-up, and walking them all at every later full collection, at exit too (~0.2 s),
# buys nothing: it is paused while the app is made, and what was made is then frozen (gc.freeze: left out
# of collections, as gunicorn's master does again before it forks, lms/preload.py). Issue 12: start-up ≤ 1 s.
_collecting = gc.isenabled()
gc.disable()
try:
    from lms import create_app

    app = create_app()
    gc.freeze()
finally:
    if _collecting:
        gc.enable()
