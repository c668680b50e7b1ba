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

# gevent: a greenlet per connection. A client that sends its headers and then trickles its
# body parks a greenlet, not a worker: with sync workers three such clients held every other
# request for 20 s. Heroku's router buffers headers but not bodies, and `docker run -p`
# exposes gunicorn directly. A request's own work (~1 ms of numpy and onnxruntime with one
# thread) runs in its greenlet without yielding, which is fine at that size.
worker_class = "gevent"
# Connections one worker holds open at once, slow or idle ones included: this bounds memory
# (a parked greenlet and its buffers are a few KB). Past it, connections wait in the backlog.
worker_connections = 1000
# A body must arrive within this many seconds or the app answers 408 and the connection is
# closed (server/body_deadline.py, installed in post_worker_init below).
_BODY_SECONDS = float(os.environ.get("BODY_DEADLINE_SECONDS", "10"))  # tests shorten it

# Heroku's router keeps idle connections to the dyno open for up to 55 s and reuses them. If
# gunicorn closed an idle connection first, a request the router sends on it at that moment
# would fail; so gunicorn waits longer than the router (async workers only keep connections
# alive; for sync workers this setting is moot).
keepalive = 75

# Import numpy, onnxruntime and Flask and load the model once, in the master, then fork: the
# workers share those pages (half the memory per worker) and need no start-up of their own.
# Fork-safe only because reading/recognizer.py gives onnxruntime no thread pools (intra/inter-op
# threads = 1): threads do not survive a fork. The gevent worker monkey-patches the standard
# library after the fork; nothing the app loads before it holds a socket or starts a thread.
preload_app = True

# A prediction takes milliseconds. A worker whose heartbeat is silent for 20 s is stuck: the
# master kills it and forks a fresh one, before Heroku's router gives up at 30 s.
timeout = 20
# On SIGTERM a worker stops accepting and finishes what it holds; Heroku sends SIGKILL 30 s
# after SIGTERM. Requests take milliseconds, a slow body at most _BODY_SECONDS; after this
# long, idle keep-alive connections are simply closed.
graceful_timeout = 12

accesslog = "-"

# The workers' heartbeat files go to memory: on a container's overlay filesystem a slow write
# can make a healthy worker look stuck. /dev/shm is absent on macOS, where the default is fine.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"


def post_worker_init(worker):
    """Wrap the app in the body deadline, in each gevent worker once it has the app."""
    if worker.cfg.worker_class_str == "gevent":  # not when overridden with -k
        from server.body_deadline import BodyDeadline

        worker.wsgi = BodyDeadline(worker.wsgi, _BODY_SECONDS,
                                   worker.wsgi.config["MAX_CONTENT_LENGTH"])


def post_request(worker, req, environ, response):
    """Give the worker's other connections a turn after each request.

    A greenlet yields only when a socket would block. Under load a client's next request
    is often already there when its greenlet reads, so one keep-alive connection can be
    served again and again while the others wait: p99 3.5 s under wrk (16 connections,
    2 busy cores). gevent.sleep(0) lets only greenlets already runnable go first (p99
    0.45 s); idle() waits until the event loop has polled the sockets too (p99 0.11 s).
    """
    if worker.cfg.worker_class_str == "gevent":
        import gevent

        gevent.idle()
