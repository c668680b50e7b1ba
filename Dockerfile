# The serving image: Flask + onnxruntime under gunicorn; no TensorFlow, tests or training report.
#   docker build -t digits . && docker run -p 5000:5000 digits
# The base is swappable (--build-arg PYTHON_IMAGE=...); keep it on the Python version the tests
# run on and runtime.txt names (3.11).
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
# `python -m venv`, not a path: the official image has /usr/local/bin/python, Debian /usr/bin.
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
# pip and setuptools only install. Serving never imports numpy's own test suites (~17 MB) nor
# onnxruntime's offline tools for quantising and rewriting models (~9 MB); without them the
# image fits its 200 MB budget.
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check -r /tmp/requirements.txt \
 && /opt/venv/bin/pip uninstall --yes --quiet --disable-pip-version-check setuptools pip \
 && site=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
 && rm -rf "$site"/numpy/*/tests "$site"/numpy/tests "$site"/onnxruntime/transformers \
        "$site"/onnxruntime/quantization "$site"/onnxruntime/tools

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=5000
RUN groupadd --system app \
 && useradd --system --gid app --no-create-home --shell /usr/sbin/nologin app
# libpq for psycopg, used when DATABASE_URL points at PostgreSQL (Heroku Postgres): Debian's
# library is a third of the size of the one psycopg's binary wheel bundles.
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libpq5 \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
# The official image ships its standard library without .pyc files and the app user cannot
# write them, so each start would compile it again (~0.6 s of a ~1 s start). Compile it once.
RUN python -m compileall -q -j 0 -x /site-packages/ \
    "$(python -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')"
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Only what serving reads, root-owned so the server cannot rewrite its code or model: the app,
# the MNIST recipe, gunicorn's settings and the command line (predict.py) at the root, and the
# serving packages whole (what was drawn, what it says, the corrections, the server's pieces).
# The training package is never copied: the image has no TensorFlow to run it.
COPY app.py utils.py gunicorn.conf.py predict.py ./
COPY drawing/ drawing/
COPY reading/ reading/
COPY corrections/ corrections/
COPY server/ server/
COPY templates/ templates/
COPY static/ static/
COPY model/model.onnx model/number.onnx model/
# Flask's instance folder, the one place the server writes: the corrections' SQLite file when
# DATABASE_URL is not set (mount a volume here to keep it across containers).
RUN mkdir instance && chown app:app instance
USER app
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["python", "-c", \
    "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/healthz' % os.environ['PORT'])"]
CMD ["gunicorn", "--config", "gunicorn.conf.py", "app:create_app()"]
