"""Server time of reading digits and numbers, with and without the touching-digit search.

For each kind of drawing, the median over drawings of the median of `--repeats` calls of
Recognizer.read (decode, ink map, segmentation, inference, reply: what /predict spends outside
Flask), of its server time (decode + preprocess + inference, as the Server-Timing header
reports it: the reply and its previews aside), and of Recognizer.read with the search
switched off (blank gaps only, as before it). Timings on a shared machine are noisy: compare
the columns of one run, not runs.

    python -m scripts.bench_numbers
"""

import argparse
import statistics
import time

import mnist_digits
import segment
import strokes
from recognizer import Recognizer
from tests.support import drawn_digits, drawn_numbers


def gaps_only(recognizer, data):
    """Recognizer.read as before the search: split at blank gaps, never search a mark."""
    searched = segment.WIDE_ASPECT, segment.UNSURE_BELOW
    segment.WIDE_ASPECT, segment.UNSURE_BELOW = float("inf"), 0.0
    try:
        return recognizer.read(data)
    finally:
        segment.WIDE_ASPECT, segment.UNSURE_BELOW = searched


def median_ms(function, data, repeats):
    """Median ms of `function(data)` over `repeats` calls, and of the server time it reports."""
    times, server_times = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        _, timings = function(data)
        times.append(time.perf_counter() - started)
        server_times.append(sum(timings.values()))
    return 1000 * statistics.median(times), 1000 * statistics.median(server_times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drawings", type=int, default=40, help="drawings of each kind")
    parser.add_argument("--repeats", type=int, default=15)
    arguments = parser.parse_args()
    recognizer = Recognizer()
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
    print(f"{'drawing':28s} {'count':>5s} {'read()':>8s} {'server':>8s} {'gaps only':>10s} "
          f"{'ratio':>6s} {'images scored':>14s}")
    for kind, cases in kinds.items():
        searched, server, before, scored = [], [], [], []
        for image, _, _ in cases:
            data = strokes.png_bytes(image)
            read_ms, server_ms = median_ms(recognizer.read, data, arguments.repeats)
            searched.append(read_ms)
            server.append(server_ms)
            before.append(median_ms(lambda d: gaps_only(recognizer, d), data,
                                    arguments.repeats)[0])
            batches = []
            original = recognizer.probabilities

            def counting(digits, batches=batches, original=original):
                batches.append(len(digits))
                return original(digits)

            recognizer.probabilities = counting
            recognizer.read(data)
            recognizer.probabilities = original
            scored.append(sum(batches))
        now, then = statistics.median(searched), statistics.median(before)
        print(f"{kind:28s} {len(cases):5d} {now:8.2f} {statistics.median(server):8.2f} "
              f"{then:10.2f} {now / then:6.2f} {statistics.median(scored):14.0f}")


if __name__ == "__main__":
    main()
