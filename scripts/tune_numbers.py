"""Choose segment.py's search settings on MNIST *training* digits (never test digits).

Draws touching numbers, spaced numbers and single digits from the training set, records for
every mark the network's reading of it whole and of every candidate part once, then replays
the decision (when to search, softening, credit per extra digit) for each setting of a grid
without calling the network again. Prints the best settings whose share of single digits
read as several stays within --most-split, with the share of single digits each searches
(a searched digit costs several times a plain one: see scripts/bench_numbers.py), and the
share of touching numbers that some chain of candidate parts reads right: what any choice
among the candidates could reach at best.

    python -m scripts.tune_numbers            # after a new model: are the settings still best?
"""

import argparse
import itertools

import numpy as np

import mnist_digits
import segment
import strokes
import utils
from recognizer import DEFAULT_MODEL, Recognizer
from tests.support import drawn_digits, drawn_numbers

GRID = {
    "wide_aspect": (0.7, 0.9, 1.1, 1.3),
    "unsure_below": (0.8, 0.9, 0.99),
    "temperature": (1.0, 2.0, 4.0, 6.0, 8.0),
    "part_bonus": (-1.0, 0.0, 0.5, 1.0, 2.0),
}


def record(recognizer, cases):
    """[(label, [mark])]: per mark its width / height, its whole reading and its candidates."""
    recorded = []
    for image, label, _ in cases:
        ink = utils.ink_map(utils.open_image(strokes.png_bytes(image)))
        marks = []
        for box, part in segment.split_digits(ink):
            whole = recognizer.probabilities(utils.to_mnist(part)[np.newaxis])[0]
            search = segment.candidate_parts(box, part)
            if search["parts"]:
                scores = recognizer.probabilities(np.stack([c["digit"] for c in search["parts"]]))
                for candidate, probabilities in zip(search["parts"], scores):
                    candidate["probabilities"] = probabilities
            marks.append({"aspect": part.shape[1] / part.shape[0], "whole": whole,
                          "search": search})
        recorded.append((str(label), marks))
    return recorded


def is_searched(mark, settings):
    return (mark["aspect"] > settings["wide_aspect"]
            or (mark["whole"].max() < settings["unsure_below"]
                and mark["aspect"] >= segment.MIN_SEARCH_ASPECT))


def replay(mark, settings):
    """The digits segment.read_digits would read in `mark` under `settings`."""
    segment.TEMPERATURE, segment.PART_BONUS = settings["temperature"], settings["part_bonus"]
    whole = (None, None, mark["whole"])
    reading = (segment._best_reading(whole, mark["search"]) if is_searched(mark, settings)
               else [whole])
    return "".join(str(int(probabilities.argmax())) for _, _, probabilities in reading)


def some_chain_reads(label, marks):
    """Whether a chain of candidate parts from one side of each mark to the other, each read
    as the network reads it, spells `label` (a mark's whole reading counts as a chain)."""
    if len(marks) != 1:  # touching numbers are one mark; others are not asked
        return "".join(str(int(mark["whole"].argmax())) for mark in marks) == label
    search, reached = marks[0]["search"], {(0, "")}
    for _ in label:
        reached = {(candidate["j"], text + str(int(candidate["probabilities"].argmax())))
                   for line, text in reached for candidate in search["parts"]
                   if candidate["i"] == line
                   and label.startswith(text + str(int(candidate["probabilities"].argmax())))}
    whole = str(int(marks[0]["whole"].argmax())) == label
    return whole or (search["cuts"] - 1, label) in reached


def accuracy(recorded, settings):
    return float(np.mean([label == "".join(replay(mark, settings) for mark in marks)
                          for label, marks in recorded]))


def split_share(recorded, settings):
    return float(np.mean([len("".join(replay(mark, settings) for mark in marks)) > 1
                          for _, marks in recorded]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--numbers", type=int, default=300)
    parser.add_argument("--singles", type=int, default=900)
    parser.add_argument("--most-split", type=float, default=0.002)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--max-cuts", type=int, default=segment.MAX_CUTS,
                        help=f"cut lines tried per mark (default {segment.MAX_CUTS}, as served)")
    parser.add_argument("--model", default=str(DEFAULT_MODEL),
                        help="the ONNX model that reads the parts (default: the shipped one)")
    arguments = parser.parse_args()
    segment.MAX_CUTS = arguments.max_cuts
    shipped = {"wide_aspect": segment.WIDE_ASPECT, "unsure_below": segment.UNSURE_BELOW,
               "temperature": segment.TEMPERATURE, "part_bonus": segment.PART_BONUS}
    recognizer = Recognizer(arguments.model)
    (x_train, y_train), _ = mnist_digits.load_mnist()
    touching = record(recognizer, drawn_numbers.touching_number_cases(
        x_train, y_train, arguments.numbers, arguments.seed))
    spaced = record(recognizer, drawn_numbers.spaced_number_cases(
        x_train, y_train, arguments.numbers // 2, arguments.seed))
    singles = record(recognizer, drawn_digits.sampled_mnist_cases(
        x_train, y_train, arguments.singles, arguments.seed))
    results = []
    for values in itertools.product(*GRID.values()):
        settings = dict(zip(GRID, values))
        searched = np.mean([is_searched(marks[0], settings) for _, marks in singles])
        results.append((accuracy(touching, settings), accuracy(spaced, settings),
                        split_share(singles, settings), searched, settings))
    allowed = sorted((r for r in results if r[2] <= arguments.most_split),
                     key=lambda r: (-r[0], -r[1]))
    print(f"touching  spaced  singles split  singles searched  settings (at most "
          f"{100 * arguments.most_split:.2f} % split)")
    shipped_row = next(r for r in results if r[4] == shipped)
    for touching_right, spaced_right, split, searched, settings in allowed[:10] + [shipped_row]:
        print(f"{100 * touching_right:7.2f} % {100 * spaced_right:6.2f} % "
              f"{100 * split:9.2f} % {100 * searched:12.1f} %      {settings}"
              + ("  (shipped)" if settings == shipped else ""))
    reachable = np.mean([some_chain_reads(label, marks) for label, marks in touching])
    print(f"touching numbers some chain of candidate parts reads right (the best any choice "
          f"could do): {100 * reachable:.2f} %")
    parts = np.mean([len(mark["search"]["parts"]) for _, marks in touching for mark in marks])
    print(f"candidate parts per touching mark: {parts:.1f} (up to {segment.MAX_CUTS} cuts)")


if __name__ == "__main__":
    main()
