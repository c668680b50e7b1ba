"""Time ONNX digit models side by side: one image per call, one thread, as the server runs them.

    python -m scripts.bench_model                                  # the shipped model alone
    git show a968495:model/model.onnx > /tmp/old.onnx
    python -m scripts.bench_model model/model.onnx /tmp/old.onnx   # against an older one

Rounds alternate between the models, so a noisy machine slows all of them alike; compare the
medians and their ratio, printed last.
"""

import argparse
import statistics
import time

import numpy as np
import onnx
from onnx import numpy_helper

from reading.recognizer import onnx_session  # the server's own session settings
from tests.support import ROOT


def parameters(path):
    """Number of weights stored in an ONNX model's initializers."""
    return sum(numpy_helper.to_array(tensor).size for tensor in onnx.load(str(path)).graph.initializer)


def milliseconds_per_image(session, image, calls):
    start = time.perf_counter()
    for _ in range(calls):
        session.run(["probabilities"], {"image": image})
    return 1000 * (time.perf_counter() - start) / calls


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", default=[str(ROOT / "model" / "model.onnx")])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=500, help="session.run calls per round")
    args = parser.parse_args()

    image = np.random.default_rng(0).random((1, 28, 28, 1), dtype=np.float32)
    sessions = {path: onnx_session(path) for path in args.models}
    for session in sessions.values():
        milliseconds_per_image(session, image, 200)  # warm up
    times = {path: [] for path in sessions}
    for _ in range(args.rounds):
        for path, session in sessions.items():
            times[path].append(milliseconds_per_image(session, image, args.calls))

    print(f"{'model':40s} {'parameters':>10s} {'median ms':>10s} {'min ms':>8s} {'max ms':>8s}")
    for path, values in times.items():
        print(f"{path:40s} {parameters(path):10,d} {statistics.median(values):10.4f} "
              f"{min(values):8.4f} {max(values):8.4f}")
    if len(times) > 1:
        first, *others = times
        for other in others:
            ratio = statistics.median(times[first]) / statistics.median(times[other])
            print(f"{first} takes {ratio:.2f}x the time of {other}")


if __name__ == "__main__":
    main()
