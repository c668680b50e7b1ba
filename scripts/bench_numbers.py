"""Server time of reading single digits and numbers, side by side in one run.

For each kind of drawing, the median over drawings of the median of `--repeats` calls of
Recognizer.read (decode, ink map, segmentation, inference, reply: what /predict spends outside
Flask), of its server time (decode + preprocess + inference, as the Server-Timing header
reports it: the reply and its previews aside), its ratio to a single digit's, and how many
images each network was given. Timings on a shared machine are noisy: compare the rows of
one run, not runs.

    python -m scripts.bench_numbers
"""

import argparse
import statistics
import time

from reading.recognizer import Recognizer
from tests.support import drawn_digits, drawn_numbers
from training import mnist_digits, strokes


def median_ms(function, data, repeats):
    """Median ms of `function(data)` over `repeats` calls, and of the server time it reports."""
    times, server_times = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        _, timings = function(data)
        times.append(time.perf_counter() - started)
        server_times.append(sum(timings.values()))
    return 1000 * statistics.median(times), 1000 * statistics.median(server_times)


class CountingRecognizer(Recognizer):
    """A Recognizer that counts the images each network is given."""

    digits = strips = 0

    def count(self, data):
        self.digits = self.strips = 0
        self.read(data)
        return self.digits, self.strips

    def probabilities(self, digits):
        self.digits += len(digits)
        return super().probabilities(digits)

    def read_strips(self, strips):
        self.strips += len(strips)
        return super().read_strips(strips)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drawings", type=int, default=40, help="drawings of each kind")
    parser.add_argument("--repeats", type=int, default=15)
    arguments = parser.parse_args()
    recognizer = CountingRecognizer()
    _, (x_test, y_test) = mnist_digits.load_mnist()
    count = arguments.drawings
    touching = list(drawn_numbers.touching_number_cases(x_test, y_test, 6 * count, seed=5))
    kinds = {
        "single digit (number mode)": list(
            drawn_digits.sampled_mnist_cases(x_test, y_test, count, seed=5)),
        "2-4 spaced digits": list(drawn_numbers.spaced_number_cases(x_test, y_test, count,
                                                                    seed=5)),
    }
    for digits in (2, 3, 4):
        kinds[f"{digits} touching digits"] = [case for case in touching
                                              if len(case[1]) == digits][:count]
    print(f"median server time per drawing, ms ({arguments.repeats} repeats each)")
    print(f"{'drawing':28s} {'count':>5s} {'read()':>8s} {'server':>8s} {'x single':>9s} "
          f"{'digit images':>13s} {'strips':>7s}")
    single = None
    for kind, cases in kinds.items():
        read, server, digits, strips = [], [], [], []
        for image, _, _ in cases:
            data = strokes.png_bytes(image)
            read_ms, server_ms = median_ms(recognizer.read, data, arguments.repeats)
            read.append(read_ms)
            server.append(server_ms)
            counted = recognizer.count(data)
            digits.append(counted[0])
            strips.append(counted[1])
        server_ms = statistics.median(server)
        single = single or server_ms
        print(f"{kind:28s} {len(cases):5d} {statistics.median(read):8.2f} {server_ms:8.2f} "
              f"{server_ms / single:9.2f} {statistics.median(digits):13.0f} "
              f"{statistics.median(strips):7.0f}")


if __name__ == "__main__":
    main()
