"""What a report shows, in words generated from its numbers: the notebooks' "what this shows"
sections, so that no sentence about a result is typed by hand and goes stale."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from segdec import claims, paper
from segdec.config import RunConfig
from segdec.data.catalogue import DEFAULT_SIZES
from segdec.recipes import PUBLISHED
from segdec.runs import (
    CHANCE_AUC,
    IMPROVED,
    IMPROVED_NO_GA,
    PAPER_KSDD_MS_L_P,
    RELEASED,
    Network,
    finished,
    join_folds,
    pixels,
)
from segdec.tables import (
    COMPARISONS,
    MISSED_SCORE,
    paired_comparisons,
    table6,
    variant_table,
)

MODE_NAMES = {"WS": "weak supervision (WS)", "MS": "mixed supervision (MS)",
              "FS": "full supervision (FS)"}


def _runtime(run_dir: str) -> dict:
    path = Path(run_dir) / "runtime.json"
    return json.loads(path.read_text())[0] if path.is_file() else {}


def runs_with_warnings(runs: pd.DataFrame) -> list[Path]:
    """The finished runs whose metrics.json carries a warning (a run that did not learn)."""
    return [Path(d) for d in finished(runs)["run_dir"]
            if "warning" in json.loads((Path(d) / "metrics.json").read_text())]


def _machine(runtime: dict) -> str:
    return (f"{runtime.get('cpu', '?')} ({runtime.get('cpu_capability', '?')}), "
            f"{runtime.get('device', '?')}, {runtime.get('torch_threads', '?')} thread(s), "
            f"{runtime.get('precision', '?')}")


def describe_rerun(run_dir: str | Path, record_dir: str | Path) -> str:
    """A run trained again beside the committed record of its setting: both test results and
    both machines, and whether they agree, so that a notebook never shows one number where the
    README shows another without saying why (a run repeats to the last digit only on the same
    CPU kind, thread count and kernel path)."""
    ours, theirs = (json.loads((Path(d) / "metrics.json").read_text())
                    for d in (run_dir, record_dir))
    keys = ("ap", "auc", "threshold", "fp", "fn")
    same = all(ours[k] == theirs[k] for k in keys)
    numbers = "; ".join(f"{k} {ours[k]:.3f} against {theirs[k]:.3f}" if isinstance(ours[k], float)
                        else f"{k} {ours[k]} against {theirs[k]}" for k in keys)
    machines = [(_machine(r) if (r := _runtime(str(d))) else "not recorded")
                for d in (run_dir, record_dir)]
    if same:
        verdict = "equal to the last digit"
    elif "not recorded" in machines:
        verdict = ("they differ, and the record does not say which machine made it (it predates "
                   "runtime.json); a run repeats to the last digit only on the same CPU kind, "
                   "thread count and kernel path")
    elif machines[0] != machines[1]:
        verdict = ("they differ: the two were trained on different machines, and a run repeats "
                   "to the last digit only on the same CPU kind, thread count and kernel path")
    else:
        verdict = "they differ on the same kind of machine: a repeat that failed, to look into"
    return (f"**This run against the committed record** `{record_dir}` (this run first): "
            f"{numbers}: {verdict}. This run: {machines[0]}; the record: {machines[1]}.")


def provenance(runs: pd.DataFrame) -> str:
    """How the runs behind a report were made: how many, on which machine, how long, and what
    they are not (input size, epochs, seeds, validation) beside the published recipe."""
    done = finished(runs)
    runtimes = [_runtime(d) for d in done["run_dir"]]
    recorded = [r for r in runtimes if r]
    machines = sorted({_machine(r) for r in recorded})
    seconds = [pd.read_csv(Path(d) / "history.csv")["seconds"].sum()
               for d in done["run_dir"] if (Path(d) / "history.csv").is_file()]
    commits = sorted({r["segdec_commit"] for r in recorded if r.get("segdec_commit")})
    lines = [f"- **Runs:** {len(done)} finished ({done['seed'].nunique()} seed(s): "
             f"{', '.join(map(str, sorted(done['seed'].unique())))})."]
    if machines:
        missing = len(done) - len(recorded)
        lines.append(f"- **Machine:** {'; '.join(machines)}" + (
            f" ({len(recorded)} of {len(done)} runs record it; the other {missing} predate "
            "runtime.json)." if missing else "."))
    if seconds:
        lines.append(f"- **Training time:** {sum(seconds) / 3600:.1f} h in all, "
                     f"{min(seconds) / 60:.1f}-{max(seconds) / 60:.1f} min per run.")
    if commits:
        lines.append(f"- **Commits:** {', '.join(commits)}.")
    warned = runs_with_warnings(done)
    if warned:
        lines.append(f"- **Runs that did not learn to segment** ({len(warned)}; their "
                     "`metrics.json` says why, they count above as outcomes of their recipe): "
                     + ", ".join(f"{d.parent.name}/{d.name}" for d in warned) + ".")
    lines.append(f"- **What it is not:** {'; '.join(departures(done))}.")
    return "\n".join(lines)


def departures(runs: pd.DataFrame) -> list[str]:
    """Where the runs depart from the dataset's published setting (input size, epochs), how
    many seeds they have, and where the best epoch was chosen."""
    notes = []
    for dataset, group in runs.groupby("dataset"):
        sizes = sorted((s for s in group["input_size"].unique() if "None" not in s),
                       key=pixels)
        if not sizes:
            notes.append("input size not recorded")
        elif dataset in DEFAULT_SIZES:
            height, width = DEFAULT_SIZES[dataset]
            ratios = " and ".join(f"{width * height / pixels(s):.0f}x" for s in sizes)
            notes.append(f"input {', '.join(sizes)} (W x H) where Božič trains {dataset} at "
                         f"{width}x{height}, {ratios} the pixels")
        else:
            notes.append(f"input {', '.join(sizes)} (W x H)")
        epochs = ", ".join(map(str, sorted(group["epochs"].unique())))
        if dataset in PUBLISHED:
            notes.append(f"{epochs} epochs (published: {PUBLISHED[dataset][0]['epochs']})")
        else:
            notes.append(f"{epochs} epochs")
    seeds = runs["seed"].nunique()
    notes.append(f"{seeds} seed{'s' if seeds > 1 else ''} per setting at most"
                 + ("; one seed's number carries seed noise of several AP points"
                    if seeds == 1 else ""))
    validation = ", ".join(sorted(runs["validation"].unique()))
    notes.append(f"best epoch chosen on the {validation}"
                 + (" (Božič's KolektorSDD protocol: comparable with the paper, optimistic)"
                    if "test set" in validation else ""))
    return notes


def table6_network(row) -> Network:
    """The network of a ``tables.table6`` row (a row of the paper's alone has no architecture or
    recipe: Božič's network as described, gradient adjustment on)."""
    architecture = row.architecture if isinstance(row.architecture, str) else "described"
    adjusted = True if pd.isna(row.gradient_adjustment) else bool(row.gradient_adjustment)
    return Network(bool(row.attention), bool(row.atrous), bool(row.decay), architecture,
                   adjusted)


def describe_table6(table: pd.DataFrame) -> str:
    """Per mode: each network's AP (mean ± sd over seeds) beside the paper's row."""
    lines = []
    rows = table[table["ap"].notna()].rename(columns={"ap paper": "ap_paper"})
    several_sizes = rows["input_size"].nunique() > 1
    for mode in ("WS", "MS", "FS"):
        parts = []
        for row in rows[rows["mode"] == mode].itertuples(index=False):
            described = table6_network(row)
            network = {"none": f"Božič's network as {described.architecture}",
                       "A+T+W": "the paper's network (A+T+W)"}.get(described.switches,
                                                                  described.switches)
            if not described.gradient_adjustment:
                network += ", gradient adjustment off"
            if several_sizes:
                network += f" at {row.input_size}"
            spread = (f" ± {row.ap_sd:.1f} over {row.seeds} seeds" if row.seeds > 1
                      else " (one seed)")
            paper_value = getattr(row, "ap_paper", None)
            versus = (f" against the paper's {paper_value:.2f} ({row.ap - paper_value:+.1f})"
                      if paper_value is not None and not np.isnan(paper_value) else "")
            parts.append(f"{network} {row.ap:.1f}{spread}{versus}")
        if parts:
            lines.append(f"- **{MODE_NAMES[mode]}:** " + "; ".join(parts) + ".")
    return "\n".join(lines)


def describe_pixel_label_curve(table: pd.DataFrame) -> str:
    """Figure 8 in words from ``tables.pixel_label_table``: per network, AP at each L_p (mean
    over seeds, folds joined), and the fewest masks whose AP comes within one point of full
    supervision's."""
    lines = []
    several_sizes = table["input_size"].nunique() > 1
    for (network, size), curve in table.groupby(["network", "input_size"], sort=False):
        points = ", ".join(f"L_p {row.l_p}: {row.ap:.1f}"
                           + (f" ± {row.ap_sd:.1f}" if row.seeds > 1 else "")
                           for row in curve.itertuples(index=False))
        seeds = int(curve["seeds"].max())
        name = network.name + (f" at {size}" if several_sizes else "")
        line = (f"- **{name}** (AP %, {seeds} seed{'s' if seeds > 1 else ''}"
                f"{', mean ± sd' if seeds > 1 else ''}): {points}.")
        full = curve[curve["mode"] == "FS"]
        mixed = curve[curve["mode"] == "MS"]
        weak = curve[curve["mode"] == "WS"]
        if len(full) and len(weak) and weak["ap"].iloc[0] >= full["ap"].iloc[0] - 1.0:
            # The obvious alternative first: if image labels alone already match every mask,
            # no count of masks "reaches" full supervision; the masks bought nothing here.
            line += (f" Weak supervision, with no mask at all ({weak['ap'].iloc[0]:.1f}), "
                     f"already comes within one point of full supervision "
                     f"({full['ap'].iloc[0]:.1f}): at this setting the masks' value is not "
                     "shown, so no fraction of masks can be compared with the paper's 45 %.")
        elif len(full) and len(mixed):
            reached = mixed[mixed["ap"] >= full["ap"].iloc[0] - 1.0]
            if len(reached):
                fewest, of = int(reached["l_p"].min()), int(full["l_p"].iloc[0])
                line += (f" Mixed supervision comes within one point of full supervision with "
                         f"{fewest} of {of} masks ({100 * fewest / of:.0f} %; the paper reports "
                         "about 45 % on Severstal).")
            else:
                line += " No mixed setting run comes within one point of full supervision."
        lines.append(line)
    return "\n".join(lines)


def describe_pairs(pairs: pd.DataFrame) -> str:
    """The paired comparisons in words (markdown bullets), generated from the table, with a
    verdict per row: a sign every pair agrees on, or a difference not separated from noise."""
    if pairs.empty:
        return ("No two networks compared here were run on the same fold and seed "
                f"({'; '.join(f'{a.name} against {b.name}' for a, b in COMPARISONS)}).")
    lines = []
    for row in pairs.itertuples(index=False):
        a, b = row.a.name, row.b.name
        favoured = a if row.a_better > row.b_better else b
        if row.sign_test_p < 0.05:
            verdict = (f"separated from seed and fold noise: {max(row.a_better, row.b_better)} "
                       f"of {row.pairs} pairs favour the {favoured} (sign test p = "
                       f"{row.sign_test_p:.3f})")
        else:
            verdict = (f"not separated from seed and fold noise (sign test p = "
                       f"{row.sign_test_p:.2f}"
                       + (f"; {row.pairs} pairs cannot reach p < 0.05" if row.pairs < 6 else "")
                       + ")")
        joined = (f"; folds joined, per seed: {row.joined_diff_per_seed} points"
                  if row.joined_seeds else "")
        lines.append(f"- **{row.mode}** (L_p {row.n_seg}, {row.input_size}), {a} minus {b}: "
                     f"{row.mean_diff:+.1f} AP points on average over {row.pairs} fold-seed "
                     f"pairs ({row.a_better} for, {row.b_better} against, {row.ties} tied)"
                     f"{joined}: {verdict}.")
    return "\n".join(lines)




def describe_figure9(columns: dict[Network, Path], mode: str) -> str:
    """Figure 9 in numbers: for each of the two runs it shows, how many of the fold's positive
    test images it detects at its own threshold, its false positives and its maps' pixel AP, so
    that what the maps look like is backed by the whole test fold, not four chosen images."""
    config = RunConfig.from_file(next(iter(columns.values())) / "config.yaml")
    lines = [f"- **Shown:** {MODE_NAMES[mode]} on {config.dataset}, fold {config.fold}, seed "
             f"{config.seed}, {config.input_width}x{config.input_height}: the first fold and seed "
             "at which both networks learnt (neither run collapsed nor ranks at chance) and saved "
             "maps, and the first positive test images they share. Each map is drawn on its own "
             "scale, from 0 to its largest value (in its title), so that a faint map is seen."]
    pixel_ap = {}
    for network, run_dir in columns.items():
        metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
        predictions = pd.read_csv(Path(run_dir) / "predictions.csv")
        flagged = predictions["score"] >= metrics["threshold"]
        positive = predictions["label"].astype(bool)
        pixel_ap[network] = 100 * metrics["pixel_ap_1_8"]
        name, false_positives = network.name, int((flagged & ~positive).sum())
        lines.append(
            f"- **{name[0].upper()}{name[1:]}:** {int((flagged & positive).sum())} of "
            f"{int(positive.sum())} positive test images detected at its threshold "
            f"{metrics['threshold']:.3f}, {false_positives} false "
            f"positive{'' if false_positives == 1 else 's'} among {int((~positive).sum())} "
            f"negatives (AP {100 * metrics['ap']:.1f}); pixel AP of its maps at their 1/8 "
            f"resolution {pixel_ap[network]:.1f} %.")
    baseline, improved = columns
    difference = pixel_ap[improved] - pixel_ap[baseline]
    lines.append(f"- **Maps:** the paper's network's pixel AP is {abs(difference):.1f} points "
                 f"{'above' if difference >= 0 else 'below'} Božič's on this fold and seed. The "
                 "paper shows its Figure 9 on Severstal without a number; one fold and one seed "
                 "are an example, not a measurement of the difference.")
    if baseline == RELEASED:
        lines.append("- **Colour:** Božič's released network normalises its map per image (zero "
                     "mean), so its panels are bright wherever the image is: read them by "
                     "contrast, and its pixel AP as that of the normalised map.")
    return "\n".join(lines)


def headline_pairs(pairs: pd.DataFrame,
                   failed: dict[tuple[Network, str, str], set[int]] | None = None) -> str:
    """The paired comparisons in a few lines for the README: per comparison and mode, how many
    fold-seed pairs the first network wins, and the sign test's p, with "not separated from
    noise" where p >= 0.05 (the notebook's ``describe_pairs`` gives the differences), and, from
    ``failed`` (``claims.failed_seeds``), how many seeds of either network hold a failed run: a
    win over a network that did not learn is not a win over the network."""
    if pairs.empty:
        return ""
    failed = failed or {}

    def failures(row) -> str:
        said = [f"{network.name} failed in {len(bad)} seed{'s' if len(bad) > 1 else ''}"
                for network in (row.a, row.b)
                if (bad := failed.get((network, row.mode, row.input_size)))]
        return f"; {' and '.join(said)}" if said else ""

    sizes = pairs["input_size"].nunique() > 1
    lines = ["**Paired** (the same fold and seed, so the same test images and split): how many "
             "pairs the first network wins, and the sign test's p."]
    for (a, b), rows in pairs.groupby(["a", "b"], sort=False):
        cells = [f"{row.mode}" + (f" at {row.input_size}" if sizes else "")
                 + f" {row.a_better} of {row.pairs}" + (f", {row.ties} tied" if row.ties else "")
                 + f" (p = {row.sign_test_p:.3f}"
                 + (", not separated from noise" if row.sign_test_p >= 0.05 else "")
                 + failures(row) + ")"
                 for row in rows.itertuples(index=False)]
        lines.append(f"- {a.name} against {b.name}: " + ", ".join(cells) + ".")
    return "\n".join(lines)


def headline(runs: pd.DataFrame) -> str:
    """The README's opening table: per supervision mode on KolektorSDD (3 folds joined), the
    paper's AP beside this project's for the paper's network (as published, and with gradient
    adjustment off) and Božič's released network, each as mean ± sd over seeds."""
    table = table6(runs, "ksdd", folds=[0, 1, 2])
    networks = (IMPROVED, IMPROVED_NO_GA, RELEASED)
    tested = claims.ablation_runs(runs)
    failed = claims.failed_seeds(tested)
    joined = join_folds(tested)
    joined = joined[joined["folds"] == "0,1,2"]
    table = table.assign(network=[table6_network(row) for row in table.itertuples(index=False)])
    # The batch's size first; a network also run at another size (the resolution row) follows.
    sizes = list(table.dropna(subset=["ap"])["input_size"].value_counts().index)
    columns = {(network, sizes[0]): network.name for network in networks}
    for size in sizes[1:]:
        columns.update({(network, size): f"{network.name} at {size}" for network in networks
                        if ((table["network"] == network) & (table["input_size"] == size)).any()})
    modes = {"WS": "WS (image labels only)", "MS": f"MS ({PAPER_KSDD_MS_L_P} masks)",
             "FS": "FS (every mask)"}
    header = ["KolektorSDD, AP %", "paper: A+T+W (Božič: none)", *columns.values()]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for mode, label in modes.items():
        rows = table[table["mode"] == mode]
        paper_values = [f"{rows.loc[rows['attention'] == a, 'ap paper'].iloc[0]:.2f}"
                        for a in (True, False) if (rows["attention"] == a).any()]
        cells = [label, " (".join(paper_values) + (")" if len(paper_values) > 1 else "")]
        for network, size in columns:
            row = rows[(rows["network"] == network) & (rows["input_size"] == size)]
            if row.empty:
                cells.append("-")
                continue
            row = row.iloc[0]
            spread = f" ± {row['ap_sd']:.1f}" if row["seeds"] > 1 else ""
            cell = (f"{row['ap']:.1f}{spread} ({row['seeds']} seed"
                    f"{'s' if row['seeds'] > 1 else ''})")
            bad = failed.get((network, mode, size), set())
            if bad:
                seeds = joined[(joined["network"] == network) & (joined["mode"] == mode)
                               & (joined["input_size"] == size)]
                kept = seeds.loc[~seeds["seed"].isin(bad), "ap"]
                without = (f"{100 * kept.mean():.1f} without" if len(kept)
                           else "none without")
                cell += f" †{len(bad)} failed, {without}"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    warned = runs_with_warnings(runs)
    pairs = headline_pairs(paired_comparisons(runs), failed)
    lines += ["", pairs] if pairs else []
    lines += ["", "†N: N seeds of the cell hold a run that did not learn (a collapsed map or a "
              f"ranking at chance, test AUC ≤ {CHANCE_AUC}); they count in the mean, and "
              "the mean of the other seeds follows."]
    return "\n".join(lines) + "\n\nNot the paper's setting: " + "; ".join(
        departures(finished(runs))) + "." + (
        f" {len(warned)} of the runs did not learn to segment (their `metrics.json` says why; "
        "they count in their columns): " + ", ".join(f"{d.parent.name}/{d.name}" for d in warned)
        + "." if warned else "")


# ---- the paper's claims (segdec.claims) ---------------------------------------------------------
KEY = ("**Key.** A: attention (the paper's channel attention on the segmentation features). "
       "T: atrous (dilated) kernels in place of the large dense ones. W: the decayed balance "
       "between the segmentation and decision losses (off: Božič's linear balance, constant in "
       "WS). None: Božič's network as described, without A, T or W. Gradient adjustment: "
       "Božič's stop of the decision loss's gradient into the segmentation features; *off* is "
       "this project's recipe, which trains where his does not. WS, MS, FS: image labels only, "
       "masks for some defective images, masks for all. *Joined*: the three folds' test "
       "predictions scored together, as Božič reports KolektorSDD (per-fold AP is higher: each "
       "fold ranks only its own images).")


def _interval(row) -> str:
    return (f"{row.mean:+.1f} AP points, 95 % interval {row.low:+.1f} to {row.high:+.1f}"
            if row.pairs > 1 else f"{row.mean:+.1f} AP points")


def _evidence(row) -> str:
    text = (f"{_interval(row)}; {row.wins} of {row.pairs} pairs for, {row.losses} against"
            + (f", {row.ties} tied" if row.ties else "") + f"; sign test p = {row.sign_p:.3f}")
    if row.failed_pairs:
        several = row.failed_pairs > 1
        text += (f"; {row.failed_pairs} pair{'s include' if several else ' includes'} a "
                 f"collapsed or at-chance run (mean without them {row.mean_without_failed:+.1f})")
    return text


def _verdict(row) -> str:
    """The verdict word, unless the pairs cannot carry one: too few to separate, or most of
    them holding a run that failed (then the difference is between failures, not networks)."""
    if row.verdict == "not yet run":
        return "not yet run"
    if row.failed_pairs * 2 > row.pairs:
        return "not testable (most pairs hold a failed run)"
    if row.verdict == "not separated" and row.pairs < 9:
        return f"not separated at {row.pairs} pair{'s' if row.pairs > 1 else ''}"
    return row.verdict


def describe_claims(changes: pd.DataFrame, supervision: pd.DataFrame,
                    numbers: pd.DataFrame, setting: str) -> str:
    """The verdict a reader can quote: one line per claim of the paper, each mode's verdict with
    its evidence (paired differences, interval, sign test), then the setting it holds in."""
    lines = []
    for claim, rows in changes.groupby("claim", sort=False):
        parts = [f"{row.mode} **{_verdict(row)}**"
                 + (f" ({_evidence(row)})" if row.verdict != "not yet run" else "")
                 for row in rows.itertuples(index=False)]
        lines.append(f"- **{claim}:** " + "; ".join(parts) + ".")
    by_mode = {row.mode: row for row in supervision.itertuples(index=False)}
    ms, ws = by_mode["MS"], by_mode["WS"]
    line = f"- **{ms.claim}:** **{_verdict(ms)}**"
    if ms.verdict != "not yet run":
        line += f" (FS minus MS: {_evidence(ms)})"
        if ws.verdict == "holds":
            line += (". But WS, with no mask at all, comes within it too (FS minus WS: "
                     f"{_evidence(ws)}): at this setting the masks' value is not shown")
        elif ws.verdict != "not yet run":
            line += f". WS, with no masks, is {ws.mean:+.1f} points from FS"
    lines.append(line + ".")
    parts = []
    for row in numbers.itertuples(index=False):
        if row.verdict == "not yet run":
            parts.append(f"{row.mode} not yet run (paper {row.paper:.2f})")
            continue
        short = "" if row.verdict == "holds" else f", {row.target - row.ap:.1f} points short"
        # The target is a mean of 3 seeds: fewer seeds say where they stand, not a verdict.
        word = (row.verdict if row.seeds >= 3 else
                f"{'reached' if row.verdict == 'holds' else 'short'} at {row.seeds} of 3 seeds")
        parts.append(f"{row.mode} {row.ap:.1f} ({row.seeds} seed{'s' if row.seeds > 1 else ''}"
                     f") against the paper's {row.paper:.2f}: **{word}** (target "
                     f"{row.target:.0f}{short})")
    missed = any(row.verdict not in ("holds", "not yet run") for row in numbers.itertuples())
    lines.append("- **Table 6's KolektorSDD numbers for the paper's network:** "
                 + "; ".join(parts) + "." + (
                     " What was tried to close the gap, one change at a time on the cracks "
                     "every network misses: `figures/ksdd/diagnosis/missed`." if missed else ""))
    lines.append(f"\nTested in: {setting}")
    return "\n".join(lines)


def claims_table_markdown(cells: pd.DataFrame) -> str:
    """Table 6 as the claims' runs give it: folds-joined AP mean ± sd (seeds), the paper's value
    beside it, failed runs marked in their cell with the mean without them."""
    reference = paper.table6()
    reference = reference[reference["dataset"] == "ksdd"]
    header = ["row", *(f"{m} (paper)" for m in ("WS", "MS", "FS"))]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for attention, atrous, decay in paper.ABLATION_SWITCHES:
        switches = Network(attention, atrous, decay)
        row_cells = [str(switches)]
        for mode in ("WS", "MS", "FS"):
            published = reference[(reference["mode"] == mode)
                                  & (reference["attention"] == attention)
                                  & (reference["atrous"] == atrous)
                                  & (reference["decay"] == decay)]["ap"].iloc[0]
            ours = cells[(cells["mode"] == mode) & (cells["switches"] == switches)]
            if ours.empty:
                row_cells.append(f"- ({published:.1f})")
                continue
            cell = ours.iloc[0]
            text = f"{cell['ap']:.1f}" + (f" ± {cell['ap_sd']:.1f}" if cell["seeds"] > 1 else "")
            text += f" ({cell['seeds']})"
            if cell["failed_runs"]:
                without = (f"{cell['ap_without_failed']:.1f} without"
                           if cell["seeds_without_failed"] else "none without")
                text += f" †{cell['failed_runs']}, {without}"
            row_cells.append(f"{text} ({published:.1f})")
        lines.append("| " + " | ".join(row_cells) + " |")
    return ("\n".join(lines) + "\n\nAP %, the 3 folds joined, mean ± sd over the seeds that "
            "have all 3 folds (their number in parentheses); the paper's Table 6 in the last "
            "parentheses. †N: N runs of the cell collapsed (a flat map) or ranked at chance "
            f"(test AUC ≤ {CHANCE_AUC}); they count in the mean, and the mean without "
            "their seeds follows.")


def claims_setting(runs: pd.DataFrame) -> str:
    """Where the claims were tested: recipe, folds, size, epochs, seeds and validation, read
    from the runs."""
    recipes = {"gradient adjustment off" if not ga else "gradient adjustment on (Božič's)"
               for ga in runs["gradient_adjustment"]}
    splits = {"Božič's 3 KolektorSDD folds" if s == "bozic" else "this project's own 3 folds"
              for s in runs["splits"]}
    sizes = sorted(runs["input_size"].unique(), key=pixels)
    epochs = sorted(int(e) for e in runs["epochs"].unique())
    seeds = sorted(int(s) for s in runs["seed"].unique())
    return (f"{', '.join(sorted(recipes))}; {', '.join(sorted(splits))}; input "
            f"{', '.join(sizes)} (W x H; Božič: 512x1408); {', '.join(map(str, epochs))} epochs "
            f"(Božič: 50); seeds {', '.join(map(str, seeds))}; the best epoch chosen on the test "
            f"fold (Božič's KolektorSDD protocol). {len(runs)} runs; a pair is two runs on the "
            "same fold and seed, and a verdict needs the 95 % t interval and the sign test "
            "(p < 0.05) to agree.")


def verdict(runs: pd.DataFrame) -> str:
    """Every claim's verdict from a set of ablation runs (``segdec.claims``), with its setting."""
    ablation = claims.ablation_runs(runs)
    cells = claims.cells(ablation)
    return describe_claims(claims.change_claims(ablation), claims.supervision_claims(ablation),
                           claims.table6_claims(cells), claims_setting(ablation))


def verdict_section(runs: pd.DataFrame) -> str:
    """What the README and notebook 06 open with: the key, the verdict per claim, Table 6 as
    these runs give it, and how the runs were made."""
    cells = claims.cells(claims.ablation_runs(runs))
    return "\n\n".join([KEY, verdict(runs), claims_table_markdown(cells),
                         "How these runs were made:\n\n" + provenance(runs)])


VARIANT_COLUMNS = ("run", "change", "folds", "seeds", "ap", "ap_fold_mean", "fp", "fn")


def _score_cell(score: float) -> str:
    """A positive's score, bold where found; ``-`` where the run did not test it."""
    if np.isnan(score):
        return "-"
    return f"**{score:.2f}**" if score >= MISSED_SCORE else f"{score:.2f}"


def variant_table_markdown(table: pd.DataFrame) -> str:
    """``tables.variant_table`` as a reader's table: AP in %, each missed positive's score."""
    images = [c for c in table.columns if c not in VARIANT_COLUMNS]
    header = ["change", "folds", "seeds", "AP % (joined)", "AP % (folds' mean)", "FP", "FN",
              *(f"`{image.removesuffix('.jpg')}`" for image in images)]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in table.to_dict("records"):
        cells = [row["change"], row["folds"], row["seeds"], f"{100 * row['ap']:.1f}",
                 f"{100 * row['ap_fold_mean']:.1f}", str(row["fp"]), str(row["fn"]),
                 *(_score_cell(row[i]) for i in images)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def describe_variants(table: pd.DataFrame) -> str:
    """One line per change: its joined AP against the reference's, and which of the positives
    the reference misses it finds (a score of at least ``MISSED_SCORE``)."""
    images = [c for c in table.columns if c not in VARIANT_COLUMNS]
    reference, variants = table.iloc[0], table.iloc[1:]
    lines = []
    for row in variants.to_dict("records"):
        found = [f"`{i.removesuffix('.jpg')}` ({row[i]:.2f})" for i in images
                 if row[i] >= MISSED_SCORE]
        partial = ("" if row["folds"] == reference["folds"] else
                   f" (folds {row['folds']} only, the reference's {reference['folds']}: not "
                   "comparable yet)")
        lines.append(
            f"- **{row['change']}:**{partial} joined AP {100 * row['ap']:.1f} against "
            f"{100 * reference['ap']:.1f} ({100 * (row['ap'] - reference['ap']):+.1f} points), "
            f"{row['fp']} FP and {row['fn']} FN against {reference['fp']} and "
            f"{reference['fn']}; of the {len(images)} positives the reference misses it finds "
            + (", ".join(found) if found else "none") + ".")
    seeds = sorted(set(",".join(table["seeds"]).split(",")))
    each = "one seed" if len(seeds) == 1 else "seeds " + ", ".join(seeds)
    lines.append(
        f"\nEach row is {each}, so a "
        "change of a few points may be seed noise (the ablation's paired seeds are what "
        "separate it); a missed crack found, or not, is what these runs are for. A positive "
        f"counts as found at a score of {MISSED_SCORE} or more (bold).")
    return "\n".join(lines)


def diagnosis_section(runs: pd.DataFrame) -> str:
    """The README's and notebook 06's account of the runs that change one thing at a time:
    the table, a line per change, and how the runs were made."""
    table = variant_table(runs)
    return "\n\n".join([variant_table_markdown(table), describe_variants(table),
                        "How these runs were made:\n\n" + provenance(runs)])
