"""Gunicorn settings for every way the app is served: `make run`, the Docker image and Heroku.

Read from the environment the platform sets: PORT (Heroku, `docker run -e PORT=...`) and
WEB_CONCURRENCY (Heroku's Python buildpack sets it from the dyno size; the container stack
does not, hence the default).
"""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"

# Heroku's buildpack picks 2 for a 512 MB dyno (standard-1X). Measured in the image: ~45 MB for
# the master plus ~28 MB per worker (PSS), so 2 leave most of the dyno free.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))

# Import numpy, onnxruntime and Flask and load the model once, in the master, then fork: the
# workers share those pages (half the memory per worker) and need no start-up of their own.
# Fork-safe only because recognizer.py gives onnxruntime no thread pools (intra/inter-op
# threads = 1): threads do not survive a fork.
preload_app = True

# A prediction takes milliseconds. A worker silent for 20 s is stuck: the master kills it and
# forks a fresh one, before Heroku's router gives up on the request at 30 s.
timeout = 20
# Heroku sends SIGKILL 30 s after SIGTERM; finish in-flight requests well before that.
graceful_timeout = 10

accesslog = "-"

# The workers' heartbeat files go to memory: on a container's overlay filesystem a slow write
# can make a healthy worker look stuck. /dev/shm is absent on macOS, where the default is fine.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"
