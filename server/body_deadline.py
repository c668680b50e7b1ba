"""A deadline on receiving a request body, for gunicorn's gevent workers (gunicorn.conf.py).

Each connection is a greenlet, so a client that trickles its body only parks a greenlet; but
it would hold that greenlet and its connection for as long as it likes. This middleware reads
the whole body (up to the app's size limit) within a deadline; a body that is late is
answered 408 by the app, and the connection is closed, since the rest of the body may still
be on its way.
"""

import io
import socket

import gevent

TIMED_OUT = "body_deadline.timed_out"  # environ key the app answers with a 408


class BodyDeadline:
    """WSGI middleware: the body must arrive within `seconds`, at most `max_bytes` read."""

    def __init__(self, app, seconds, max_bytes):
        self.app = app
        self.seconds = seconds
        self.max_bytes = max_bytes

    def __call__(self, environ, start_response):
        length = environ.get("CONTENT_LENGTH") or ""
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        declared = int(length) if length.isdigit() else None
        if not chunked and (not declared or declared > self.max_bytes):
            return self.app(environ, start_response)  # no body, or refused unread by the app
        timer = gevent.Timeout(self.seconds)
        timer.start()
        try:
            body = environ["wsgi.input"].read(min(declared or self.max_bytes + 1,
                                                  self.max_bytes + 1))
        except gevent.Timeout as expired:
            if expired is not timer:
                raise
            environ[TIMED_OUT] = self.seconds
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(), "0"
            return _CloseAfter(self.app(environ, start_response), environ.get("gunicorn.socket"))
        finally:
            timer.close()
        environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)


class _CloseAfter:
    """The app's response, then the connection shut: the late body's rest must not be read
    as the next request (gunicorn calls close() once the response is written)."""

    def __init__(self, response, connection):
        self.response = response
        self.connection = connection

    def __iter__(self):
        return iter(self.response)

    def close(self):
        if hasattr(self.response, "close"):
            self.response.close()
        if self.connection is not None:
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # the client has gone already
