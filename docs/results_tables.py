"""The condensed tables of ``docs/results.md``, printed from the ``results.json`` of ``tfsal evaluate``.

One table per protocol (the paper protocol at P = 90, the area-matched and the search-matched
regions, the deletion and insertion curves) for one image set: each method's median D and H, mean
A, empty regions and flips, and ours against it (the paired one-sided test ``tfsal evaluate``
ran: ours - method, median difference with its bootstrap 95 % interval, wins / losses, Holm-adjusted
p over the whole table of ``results.md``). Every number is read from the file, none is computed here
but the formatting.

    python docs/results_tables.py runs/eval_shipped/results.json --set all
"""

from __future__ import annotations

import argparse
import json

from tfsal.evaluation.protocols import REFERENCE
from tfsal.evaluation.report import label, today_names
from tfsal.evaluation.summary import CURVE_MEASURES

TITLES = {
    "paper": "Paper protocol (ours: own mask; maps: top 10 % of the breast, P = 90)",
    "area": "Area-matched (each map cut to ours' own area on each image)",
    "search": "Search-matched (each region the smallest top share on the grid that flips the decision)",
}


def _test(entry: dict | None) -> str:
    if entry is None:
        return "– | – | –"
    low, high = entry["interval"]
    p = entry["p_holm"]
    return (f"{entry['median_difference']:+.1f} [{low:+.1f}, {high:+.1f}] | {entry['wins']} / {entry['losses']} | "
            f"{p:.2g}" + (" **" if p < 0.05 else ""))


def region_table(result: dict, name: str, protocol: str, post: str = "raw") -> list[str]:
    summary, tests = result["summary"][name], result["tests"][name]
    found, compared = summary[protocol][post], tests.get(protocol, {}).get(post, {})
    if protocol == "paper":
        rows = [("own", REFERENCE, label(REFERENCE)), ("own-nogrow", REFERENCE, f"{label(REFERENCE)}, before growth")]
        rows += [("paper", k, label(k)) for k in found if k.endswith("@90")]
    else:
        rows = [(protocol, k, label(k)) for k in found]
    title = TITLES[protocol] + (", every region reduced to its largest connected component" if post != "raw" else "")
    lines = [f"**{title}**", "",
             "| method | D median | H median | A mean | empty | flipped / positive | ours - method, D [95 % CI] "
             "| wins / losses | p (Holm) | ours - method, H [95 % CI] | wins / losses | p (Holm) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for kind, key, text in rows:
        entry = summary.get(kind, {}).get(post, {}).get(key)
        if entry is None:
            continue
        flips = f"{entry['flipped']} / {summary['positives']}" if post == "raw" else "–"  # flips: raw only
        is_ours = kind in ("own", "own-nogrow") or key.startswith(REFERENCE)
        tests_d = "– | – | –" if is_ours else _test(compared.get(f"{key}:D"))
        tests_h = "– | – | –" if is_ours else _test(compared.get(f"{key}:H"))
        lines.append(f"| {text} | {entry['D']['median']:.1f} | {entry['H']['median']:.1f} | {entry['A']['mean']:.3f} | "
                     f"{entry['empty']} | {flips} | {tests_d} | {tests_h} |")
    return lines


def curve_table(result: dict, name: str) -> list[str]:
    summary, tests = result["summary"][name]["curve"], result["tests"][name].get("curve", {}).get("raw", {})
    header = " | ".join(f"{m} mean | ours - method [95 % CI], W / L, p (Holm)" for m in CURVE_MEASURES)
    lines = ["**Deletion (lower is better) and insertion (higher is better) curves, area under the curve**", "",
             f"| method | {header} |", "|---|" + "---|" * (2 * len(CURVE_MEASURES))]
    for key, entry in summary.items():
        cells = []
        for measure in CURVE_MEASURES:
            test = tests.get(f"{key}:{measure}")
            text = "–" if test is None else (
                f"{test['median_difference']:+.3f} [{test['interval'][0]:+.3f}, {test['interval'][1]:+.3f}], "
                f"{test['wins']} / {test['losses']}, {test['p_holm']:.2g}" + (" **" if test["p_holm"] < 0.05 else ""))
            cells += [f"{entry[measure]['mean']:.3f}", text]
        lines.append(f"| {label(key)} | " + " | ".join(cells) + " |")
    return lines


def verdicts(result: dict, name: str, post: str = "raw") -> list[str]:
    """One line per protocol and measure: the methods ours beats (one-sided test, Holm p < 0.05),
    those it loses to (the 95 % interval of the median paired difference wholly on ours' worse
    side), and the rest (no decision)."""
    lines = ["| protocol | measure | ours better (Holm p < 0.05) | ours worse (95 % CI wholly against ours) | "
             "undecided |", "|---|---|---|---|---|"]
    for protocol, found in result["tests"][name].items():
        compared = found.get("raw" if protocol == "curve" else post, {})
        split = (lambda key: key.split(":", 1)) if protocol == "curve" else (lambda key: key.rsplit(":", 1))
        for measure in dict.fromkeys(split(k)[1] for k in compared):
            better, worse, open_ = [], [], []
            for key, entry in compared.items():
                method, what = split(key)
                if what != measure:
                    continue
                low, high = entry["interval"]
                worse_side = low > 0 if entry["alternative"] == "less" else high < 0
                text = label(method)
                (better if entry["p_holm"] < 0.05 else worse if worse_side else open_).append(text)
            lines.append(f"| {protocol} | {measure} | {'; '.join(better) or '–'} | {'; '.join(worse) or '–'} | "
                         f"{len(open_)} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="results.json of tfsal evaluate")
    parser.add_argument("--set", default="all", choices=["all", "positive"])
    parser.add_argument("--protocol", nargs="*", default=["paper", "area", "search", "curve"])
    parser.add_argument("--verdicts", action="store_true", help="only the who-wins table over every test")
    parser.add_argument("--post", default="raw", choices=["raw", "largest"],
                        help="regions as they are, or reduced to their largest connected component")
    args = parser.parse_args()
    with open(args.results) as handle:
        result = today_names(json.load(handle))  # results of any release under today's row names
    summary = result["summary"][args.set]
    print(f"{summary['images']} mass images ({summary['positives']} called positive), set '{args.set}'; "
          "D, H median px at 256x192 (an empty region counts as the image diagonal); ** = Holm p < 0.05\n")
    if args.verdicts:
        print("\n".join(verdicts(result, args.set, args.post)) + "\n")
        return
    for protocol in args.protocol:
        lines = (curve_table(result, args.set) if protocol == "curve"
                 else region_table(result, args.set, protocol, args.post))
        print("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
