"""Diffusion vs GAN on this CPU: FID against training time, and sampling time.

Both families train on Fashion-MNIST with their shipped defaults (`pixelforge train diffusion`
and `pixelforge train gan`) to each of the given minutes, and are evaluated there (evaluation
time is not training time). The GAN continues one run from mark to mark; each diffusion mark is
a run of its own, because the diffusion recipe cools its learning rate down over its budget.

Training time is counted in *solo-CPU minutes*: a timing probe first measures each family's
optimisation steps per second while it has the machine to itself (`--lock`: a file lock the
timed parts hold, with the OpenMP default wait policy), and each mark then trains to
``minutes x 60 x steps/s`` steps. A probe reads the steady rate from the timestamps of the
training loop's metrics log, and the families' probes take turns for ``--probe-repeats``
rounds (each family's median counts): this machine's speed drifts by up to 20%. The result
is the model a solo run of that length would give, even when the long training runs share the
machine with other work (``leg_seconds``: the wall time of a diffusion mark's run, or of the
GAN's leg from the mark before). The GAN is trained only as far as the verdict needs: its
best FID so far can only go down, so if diffusion at 30 min is worse than the GAN at an earlier
mark it is worse than the GAN's best at 30 min. FID uses the shipped default Fashion-MNIST judge
(the results name it) on ``--samples`` samples against as many test images; the
diffusion model samples with ``--eval-sampler`` (DDIM or DPM-Solver++) at ``--eval-steps`` steps
(each row records which), the GAN from its EMA generator.
``--families diffusion-cond`` adds the class-conditional diffusion model (`train diffusion
--conditional`), the like-for-like rival of the GAN, whose default uses the labels too; its
samples are class-balanced and drawn with classifier-free guidance ``--guidance``, and at the
last mark FID is also measured at ``--guidance`` and each scale of ``--guidance-sweep`` against
as many validation images (``val_fid_by_guidance``: a choice of scale is made on validation,
never on the test images the verdict uses). With ``--reuse``, the
families of the earlier results that are not re-run now stay in the results; ``--fresh``
names the families to measure anew instead of continuing them. Rows are matched on minutes and
steps only, so after a change to a family's recipe name it in ``--fresh``.
Sampling time: 64 images at 25, 50 and 250 DDIM steps, batch 64, after one warm-up batch
(``--time-sampling``: on an untrained net of the default shape, when the unconditional family
is not re-run).
``--confirm-samples 10000`` re-measures each family's last mark on that many samples against
the whole test set (``confirmation``, kept per mark while its row stays); the FID target is
withdrawn when such a confirmation from 30 minutes on disagrees, i.e. when diffusion is not
below the GAN at the same mark and sample count (``confirmation_verdicts``).
``--seeds 0,1,2`` re-judges the like-for-like pair over seeds: the GAN and the conditional
diffusion model are trained again, once per seed, to the steps of their recorded
``--seed-mark`` (30-minute) rows, and measured on that row's number of test images, sampler
and guidance under the default Fashion-MNIST judge and the independently trained second one
(one sample set, both judges); each (family, seed) is cached in
``diffusion_quality_cache.json`` once measured, and an interrupted seed resumes from its
run's checkpoint (``runs/bench-FAMILY-quality-sSEED``). Results: ``seeds``.
``--curve 0`` draws the pair's curve in both judges: every recorded row of the GAN and the
conditional diffusion model (5, 30 and 60 minutes) is trained again with seed 0 to its steps and
measured as the seeds are (the 30-minute rows are the seeds' own runs, from their cache; the
GAN's 60 minutes continue a copy of its 30-minute run); with ``--confirm-samples 10000`` the two
30-minute runs are also measured on the whole test set. Results: ``curve``, the plot, and the
class grid docs/images/diffusion_cond_samples.png from the longest diffusion run.
Targets: diffusion FID below the GAN's best-so-far at equal training time from 30 minutes
on, for the conditional model over at least 3 seeds (the per-seed margin's mean minus its
std above 0 under both judges; pending until then); 64 samples with 50 DDIM steps in <= 10 s.

    PIXELFORGE_DATA=../shared/data python benchmarks/diffusion_quality.py [--checkpoints 10,20,30]

Writes benchmarks/results/diffusion_quality.json, diffusion_quality.png and a sample grid
docs/images/diffusion_samples.png; ``--replot`` only redraws diffusion_quality.png from the JSON
(the curve in both judges where the file has one).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import fcntl
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import RESULTS, commit, machine, save_cache, summarise, write_json, write_results

import pixelforge
from pixelforge.images import pyplot, save_figure, save_grid
from pixelforge.pipelines.evaluate import evaluate_generator, real_images, resolve_extractor
from pixelforge.runs import Run
from pixelforge.zoo.catalog import JUDGES, OTHER_JUDGES

DOCS_IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"
FAMILIES = {"diffusion": pixelforge.train_diffusion, "gan": pixelforge.train_gan,
            "diffusion-cond": functools.partial(pixelforge.train_diffusion, conditional=True)}
DIFFUSION = ("diffusion", "diffusion-cond")
SAMPLING_KEYS = ("sampling_seconds_64_images", "sampling_target_met", "sampling_timed_on")
# The like-for-like pair (both use the labels) whose verdict further seeds re-judge, and their cache.
SEED_FAMILIES = ("gan", "diffusion-cond")
SEED_CACHE = RESULTS / "diffusion_quality_cache.json"
# The default Fashion-MNIST judge (trained on the training split only) and the independently trained second one.
SEED_JUDGES = (JUDGES["fashion-mnist"], OTHER_JUDGES["fashion-mnist"][0])


@contextlib.contextmanager
def machine_lock(path: str | None):
    if not path:
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# Timed steps per probe: about 30 s solo each, so the clock's noise stays small.
PROBE_STEPS = {"gan": 500, "diffusion": 60, "diffusion-cond": 100}


def probe(family: str, runs_dir: str, warm: int = 20) -> float:
    """Optimisation steps per second of a family's default recipe (run in a fresh process).

    The steady rate inside the training loop, from the timestamps of its metrics log: what a leg
    costs once (loading the data, the final checkpoint and sample grid) is left out, as it
    vanishes in a long run. Timing a whole short leg counted it, and it weighed most on the GAN,
    whose 60 timed steps took only 4 s."""
    run = Path(runs_dir) / f"probe-{family}"
    train = FAMILIES[family]
    train("fashion-mnist", run, overwrite=True, seed=0, max_steps=warm, progress=False)
    train(None, run, resume=True, max_steps=warm + PROBE_STEPS[family], progress=False)
    rows = [r for r in Run.open(run).read_metrics() if r["step"] > warm]
    return (rows[-1]["step"] - rows[0]["step"]) / (rows[-1]["time"] - rows[0]["time"])


def in_subprocess(what: str, runs_dir: str, lock: str | None) -> dict:
    """Run a timed part alone in a fresh process, with OpenMP's default wait policy (an empty
    value reads as unset), under the machine lock."""
    env = {**os.environ, "OMP_WAIT_POLICY": ""}
    with machine_lock(lock):
        out = subprocess.run([sys.executable, __file__, "--probe", what, "--runs-dir", runs_dir], env=env,
                             check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def sampling_times(run: Path, steps_list=(25, 50, 250)) -> dict:
    pipe = pixelforge.load(run)
    pipe.sample(64, steps=5)  # warm-up: oneDNN picks its kernels
    times = {}
    for steps in steps_list:
        t = time.perf_counter()
        pipe.sample(64, seed=0, steps=steps)
        times[str(steps)] = round(time.perf_counter() - t, 2)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", default="10,20,30", help="training minutes at which to measure FID")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--eval-steps", type=int, default=50, help="sampling steps of the diffusion samples for FID")
    ap.add_argument("--eval-sampler", default="ddim", choices=("ddim", "dpm++"),
                    help="sampler of the diffusion samples for FID")
    ap.add_argument("--runs-dir", default="runs")
    ap.add_argument("--families", default="diffusion,gan",
                    help="of diffusion, diffusion-cond (class-conditional, sampled with guidance) and gan")
    ap.add_argument("--guidance", type=float, default=1.5,
                    help="classifier-free guidance of diffusion-cond's FID samples")
    ap.add_argument("--guidance-sweep", default="1,2,3",
                    help="diffusion-cond: also measure FID at these guidance scales at the last mark")
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--reuse", default=None, help="continue from a partial results JSON of an interrupted run "
                                                   "(its probe rates, rows and run directories)")
    ap.add_argument("--fresh", default="", help="with --reuse: families whose rows and probe rate are measured "
                                                 "anew (after a change to their code or recipe)")
    ap.add_argument("--time-sampling", action="store_true",
                    help="time sampling on the default unconditional net even when its family is not re-run")
    ap.add_argument("--probe-repeats", type=int, default=3, help="rounds of the timing probes (median counts)")
    ap.add_argument("--lock", default=None, help="file lock held while timing (shared build machines)")
    ap.add_argument("--confirm-samples", type=int, default=0,
                    help="also measure each family's last mark on this many samples (10000: the whole test set), "
                         "from the run directories in --runs-dir")
    ap.add_argument("--seeds", default="",
                    help="train and measure gan and diffusion-cond again with these seeds (e.g. 1,2) to the step "
                         "budget of the recorded --seed-mark row; cached per seed, resumable")
    ap.add_argument("--curve", type=int, default=None, metavar="SEED",
                    help="measure the recorded rows of gan and diffusion-cond again, trained with SEED, under both "
                         "judges (the seed mark's rows from the seeds' cache); cached per run, resumable")
    ap.add_argument("--seed-mark", type=float, default=30.0, help="the minutes whose recorded steps --seeds trains")
    ap.add_argument("--replot", action="store_true",
                    help="only redraw diffusion_quality.png from benchmarks/results/diffusion_quality.json")
    ap.add_argument("--probe", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.replot:
        saved = json.loads((RESULTS / "diffusion_quality.json").read_text())
        if "curve" in saved:
            plot_curve(saved["curve"], RESULTS / "diffusion_quality.png")
            return
        plot(saved["results"], saved["judge"], saved["samples"], RESULTS / "diffusion_quality.png",
             saved.get("confirmation"))
        return
    if args.probe == "sampling":
        print(json.dumps(sampling_times(Path(args.runs_dir) / "bench-diffusion-quality")))
        return
    if args.probe:
        print(json.dumps({"steps_per_s": probe(args.probe, args.runs_dir)}))
        return
    marks = [float(m) for m in args.checkpoints.split(",")]
    data = {"spec": "fashion-mnist", "size": 28, "channels": 1}
    if args.curve is not None:
        measure_curve(args.curve, args.seed_mark, Path(args.runs_dir), data, save=not args.no_save,
                      confirm_samples=args.confirm_samples)
        return
    if args.seeds:
        repeat_seeds([int(s) for s in args.seeds.split(",")], args.seed_mark, Path(args.runs_dir), data,
                     save=not args.no_save)
        return
    judge = resolve_extractor(None, "fashion-mnist")  # --curve and --seeds measure under SEED_JUDGES
    real = real_images(data, args.samples, "test")  # the verdict
    real_val = real_images(data, args.samples, "val")  # choices: the guidance sweep
    table: dict[str, list[dict]] = {}
    families = args.families.split(",")
    fresh = [f for f in args.fresh.split(",") if f]
    unknown = [f for f in families + fresh if f not in FAMILIES]
    if unknown:
        sys.exit(f"unknown families {', '.join(unknown)}: use {', '.join(FAMILIES)}")
    previous = json.loads(Path(args.reuse).read_text()) if args.reuse else {}
    for f in DIFFUSION:  # rows from before the sampler was recorded per row were all drawn with DDIM
        for row in previous.get("results", {}).get(f, []):
            row.setdefault("sampler", f"ddim, {previous['eval_steps']} steps")
    for f in fresh:
        for key in ("solo_steps_per_second", "solo_probe_rounds", "results", "confirmation"):
            previous.get(key, {}).pop(f, None)
    rates = dict(previous.get("solo_steps_per_second") or {})  # a family left out of --reuse's file is re-probed
    # This shared machine's speed drifts by up to 20% from minute to minute, so the families'
    # probes take turns, ``--probe-repeats`` rounds of them, and each family's median counts.
    probes: dict[str, list[float]] = {f: [] for f in families if f not in rates}
    for _ in range(args.probe_repeats):
        for f in probes:
            probes[f].append(round(in_subprocess(f, args.runs_dir, args.lock)["steps_per_s"], 3))
    rates.update({f: statistics.median(v) for f, v in probes.items()})
    probe_rounds = {**previous.get("solo_probe_rounds", {}), **probes}
    drawn = {"eval_steps": args.eval_steps, "eval_sampler": args.eval_sampler}
    if not any(f in DIFFUSION for f in families) and "eval_steps" in previous:
        # No diffusion row is drawn now: the reused rows' settings stay (files before the sampler option: DDIM).
        drawn = {"eval_steps": previous["eval_steps"], "eval_sampler": previous.get("eval_sampler", "ddim")}
    # Beyond rows and rates, an earlier results file holds the sampling times (--time-sampling).
    carried = {k: v for k, v in previous.items() if k in SAMPLING_KEYS}
    for f, r in rates.items():
        print(f"{f:<10} {r:.2f} steps/s solo -> {r * 60:.0f} steps per minute", flush=True)
    for family in families:
        run = Path(args.runs_dir) / f"bench-{family}-quality"
        train = FAMILIES[family]
        done, table[family] = 0.0, []
        for mark in marks:
            diffusions = [table[f][-1]["fid"] for f in DIFFUSION if table.get(f)]
            if family == "gan" and diffusions and table[family]:
                # Stop once the verdict is settled: every diffusion's last FID is already worse than the GAN's best.
                if min(diffusions) > min(r["fid"] for r in table[family]):
                    break
            steps = round(mark * 60 * rates[family])
            old = [r for r in previous.get("results", {}).get(family, []) if r["minutes"] == mark and r["steps"] == steps]
            if old:  # measured before the interruption: the run directory already holds these steps
                table[family].append(old[0])
                done = mark
                print(f"{family:<10} {mark:>5.1f} min  step {steps:>6}  FID {old[0]['fid']:8.3f}  (reused)", flush=True)
                continue
            t = time.perf_counter()
            # A diffusion run cools its learning rate down over its own budget, so each of its marks
            # is a separate run of that length; the GAN's rates are constant, so its legs continue.
            if family in DIFFUSION or (done == 0 and not table[family]):
                train("fashion-mnist", run, overwrite=True, seed=0, max_steps=steps)
            else:
                train(None, run, resume=True, max_steps=steps)
            train_s = time.perf_counter() - t
            done = mark
            sampling = {"steps": args.eval_steps, "solver": args.eval_sampler} if family in DIFFUSION else {}
            guided = {"guidance": args.guidance} if family == "diffusion-cond" else {}
            pipe = pixelforge.load(run, **sampling, **guided)
            t = time.perf_counter()
            m = evaluate_generator(pipe, data, args.samples, judge, metrics=("fid", "kid"), real=real, progress=False)
            steps = Run.open(run).load_state()["step"]
            row = {"minutes": mark, "steps": steps, "fid": round(m["fid"], 3), "kid": round(m["kid_mean"], 5),
                   "leg_seconds": round(train_s, 1), "eval_seconds": round(time.perf_counter() - t, 1), **guided}
            if sampling:
                row["sampler"] = f"{args.eval_sampler}, {args.eval_steps} steps"
            if guided and mark == marks[-1]:
                row["val_fid_by_guidance"] = {}
                for w in sorted({args.guidance, *(float(v) for v in args.guidance_sweep.split(",") if v)}):
                    pipe.guidance = w  # the scale sample() uses by default
                    fid = evaluate_generator(pipe, data, args.samples, judge, metrics=("fid",), real=real_val,
                                             split="val", progress=False)["fid"]
                    row["val_fid_by_guidance"][str(w)] = round(fid, 3)
                    print(f"{family:<10} guidance {w:g}: validation FID {fid:.3f}", flush=True)
                pipe.guidance = args.guidance
            table[family].append(row)
            print(f"{family:<10} {mark:>5.1f} min  step {steps:>6}  FID {row['fid']:8.3f}  KID {row['kid']:.4f}  "
                  f"(eval {row['eval_seconds']:.0f} s)", flush=True)
            if not args.no_save:  # partial results survive an interrupted benchmark, and lose nothing of before
                merged = {**previous.get("results", {}), **table}
                write_results("diffusion_quality", {**carried, "complete": False, "judge": judge.name,
                                                    "samples": args.samples, **drawn, "results": merged,
                                                    "solo_steps_per_second": rates,
                                                    "solo_probe_rounds": probe_rounds,
                                                    "confirmation": kept_confirmations(previous, merged)})
    for family, rows in previous.get("results", {}).items():
        table.setdefault(family, rows)  # families measured before and not re-run now stay in the results
    figures: dict = {**carried, "complete": True, "judge": judge.name, "samples": args.samples,
                     **drawn, "solo_steps_per_second": {f: round(r, 3) for f, r in rates.items()},
                     "solo_probe_rounds": probe_rounds, "results": table}
    confirmation = kept_confirmations(previous, table)
    if args.confirm_samples:
        for family, check in confirm(table, Path(args.runs_dir), args.confirm_samples, data, judge,
                                     confirmation).items():
            confirmation[family] = [c for c in confirmation.get(family, [])
                                    if (c["minutes"], c["samples"]) != (check["minutes"], check["samples"])]
            confirmation[family].append(check)
    if confirmation:
        figures["confirmation"] = confirmation
    if "diffusion" in families or args.time_sampling:
        run = Path(args.runs_dir) / "bench-diffusion-quality"
        figures["sampling_timed_on"] = "the unconditional run trained above"
        if "diffusion" not in families:  # an untrained net of today's default shape samples as fast
            pixelforge.train_diffusion("fashion-mnist", run, overwrite=True, max_steps=1, progress=False)
            figures["sampling_timed_on"] = "a 1-step run of the default net (--time-sampling)"
        figures["sampling_seconds_64_images"] = times = in_subprocess("sampling", args.runs_dir, args.lock)
        for steps, secs in times.items():
            print(f"64 samples, {steps:>3} DDIM steps: {secs:.2f} s")
        figures["sampling_target_met"] = times["50"] <= 10
        if not args.no_save and "diffusion" in families:
            save_grid(pixelforge.load(run).sample(64, seed=0, steps=50), DOCS_IMAGES / "diffusion_samples.png", scale=2)
    if "diffusion-cond" in families and not args.no_save:
        save_class_grid(Path(args.runs_dir) / "bench-diffusion-cond-quality", args.guidance, args.eval_sampler)
    if "gan" in table and any(f in table for f in DIFFUSION):
        verdicts = []
        for family in (f for f in DIFFUSION if f in table):
            for d in table[family]:
                # The GAN's best so far; when the GAN stopped early, its best at an earlier mark bounds it.
                gan_best = min(g["fid"] for g in table["gan"] if g["minutes"] <= d["minutes"])
                verdicts.append({"family": family, "minutes": d["minutes"], "diffusion_fid": d["fid"],
                                 "gan_best_fid_at_most": gan_best, "diffusion_better": d["fid"] < gan_best})
                print(f"at {d['minutes']:g} min: {family} {d['fid']:.3f} vs GAN best {gan_best:.3f} "
                      f"-> {'diffusion better' if d['fid'] < gan_best else 'GAN better'}")
        figures["comparison"] = verdicts
        met_by = []
        for family in (f for f in DIFFUSION if f in table):
            late = [v for v in verdicts if v["family"] == family and v["minutes"] >= 30]
            settled = all(any(g["minutes"] == v["minutes"] for g in table["gan"]) or not v["diffusion_better"]
                          for v in late)
            if late and settled and all(v["diffusion_better"] for v in late):
                met_by.append(family)
        gan_checks = {(c["minutes"], c["samples"]): c for c in confirmation.get("gan", [])}
        checked = []  # a confirmation at a mark and sample count both families have must agree
        for family in (f for f in DIFFUSION if f in confirmation):
            for check in confirmation[family]:
                gan_check = gan_checks.get((check["minutes"], check["samples"]))
                if check["minutes"] >= 30 and gan_check:
                    checked.append({"family": family, "minutes": check["minutes"], "samples": check["samples"],
                                    "diffusion_fid": check["fid"], "gan_fid": gan_check["fid"],
                                    "diffusion_better": check["fid"] < gan_check["fid"]})
                    print(f"at {check['minutes']:g} min on {check['samples']} samples: {family} {check['fid']:.3f} "
                          f"vs GAN {gan_check['fid']:.3f}")
                    if not checked[-1]["diffusion_better"] and family in met_by:
                        met_by.remove(family)
        if checked:
            figures["confirmation_verdicts"] = checked
        figures["single_run_met_by"] = figures["fid_target_met_by"] = met_by
        figures["fid_target_met"] = bool(met_by)
        cache = json.loads(SEED_CACHE.read_text()) if SEED_CACHE.is_file() else {}
        apply_seed_verdict(figures, cache, args.seed_mark)
    if not args.no_save:
        write_results("diffusion_quality", figures)
        plot(table, judge.name, args.samples, RESULTS / "diffusion_quality.png", confirmation)


def seed_key(family: str, steps: int, seed: int) -> str:
    return f"{family}|steps={steps}|seed={seed}"


def seed_rows(figures: dict, mark: float) -> dict:
    """Each of ``SEED_FAMILIES``' recorded row at ``mark`` minutes (None where it has none)."""
    return {f: next((r for r in figures["results"].get(f, []) if r["minutes"] == mark), None) for f in SEED_FAMILIES}


def row_sampling(row: dict) -> dict:
    """The loader options that drew a row's samples: its guidance and its sampler ("dpm++, 25 steps")."""
    options = {"guidance": row["guidance"]} if "guidance" in row else {}
    if "sampler" in row:
        solver, steps = row["sampler"].split(", ")
        options.update(solver=solver, steps=int(steps.split()[0]))
    return options


def seed_run(runs_dir: Path, family: str, steps: int, seed: int, seed_steps: int) -> Path:
    """The run directory of ``family`` trained with ``seed`` to ``steps``: the seed mark's budget
    keeps its plain name, other budgets carry theirs."""
    base = runs_dir / f"bench-{family}-quality-s{seed}"
    return base if steps == seed_steps else base.with_name(f"{base.name}-{steps}steps")


class SeedMeasurer:
    """Trains a family with a seed to a recorded row's steps and measures it on the row's number
    of test images, sampler and guidance under both ``SEED_JUDGES`` (one sample set), caching
    each (family, steps, seed) in ``SEED_CACHE`` as soon as it is measured."""

    def __init__(self, saved: dict, runs_dir: Path, data: dict, seed_mark: float):
        # Imported here: the metrics load torchmetrics, which the timing probes need not pay for.
        from pixelforge.metrics import calculate_metrics

        self.calculate_metrics = calculate_metrics
        self.saved, self.runs_dir = saved, runs_dir
        self.judges = [resolve_extractor(name, "fashion-mnist") for name in SEED_JUDGES]
        self.data = data
        self.real = {saved["samples"]: real_images(data, saved["samples"], "test")}  # by number of images
        self.cache = json.loads(SEED_CACHE.read_text()) if SEED_CACHE.is_file() else {}
        self.seed_steps = {f: (r or {}).get("steps") for f, r in seed_rows(saved, seed_mark).items()}

    def measure(self, family: str, row: dict, seed: int, samples: int | None = None) -> dict:
        """``samples`` other than the row's (e.g. 10,000: the whole test set) measure the run the
        row's budget trained again, on that many samples against as many test images."""
        samples = samples or self.saved["samples"]
        key = seed_key(family, row["steps"], seed) + (f"|samples={samples}" if samples != self.saved["samples"] else "")
        if key in self.cache:
            print(f"{family:<14} {row['steps']:>6} steps, seed {seed}: FID {self.cache[key]['fid']} (cached)")
            return self.cache[key]
        run = seed_run(self.runs_dir, family, row["steps"], seed, self.seed_steps.get(family))
        t = time.perf_counter()
        resume = Run.resumable(run)
        if resume and Run.open(run).load_state()["step"] >= row["steps"]:
            pass  # trained to this budget already (a measurement on another number of samples)
        elif samples != self.saved["samples"]:
            sys.exit(f"no run of {family} at {row['steps']} steps with seed {seed} in {self.runs_dir}: measure it on "
                     f"{self.saved['samples']} samples first")
        else:
            if not resume and family == "gan":
                # The GAN's learning rate is constant, so a longer budget continues a copy of the
                # same seed's longest shorter run (the seed mark's is kept as it was).
                shorter = self.gan_run_below(row["steps"], seed)
                if shorter is not None:
                    shutil.copytree(shorter, run, dirs_exist_ok=False)
                    resume = True
            if resume:  # an interrupted or continued run goes on from its last checkpoint
                FAMILIES[family](None, run, resume=True, max_steps=row["steps"])
            else:
                FAMILIES[family]("fashion-mnist", run, overwrite=True, seed=seed, max_steps=row["steps"])
        train_s = time.perf_counter() - t
        if samples not in self.real:
            self.real[samples] = real_images(self.data, samples, "test")
        t = time.perf_counter()
        fake = pixelforge.load(run, **row_sampling(row)).sample(samples, seed=0)
        measured = {j.name: self.calculate_metrics(self.real[samples], fake, j, metrics=("fid", "kid"))
                    for j in self.judges}
        self.cache[key] = {"family": family, "seed": seed, "steps": Run.open(run).load_state()["step"],
                           "samples": samples, "split": "test",
                           "fid": {j: round(m["fid"], 3) for j, m in measured.items()},
                           "kid": {j: round(m["kid_mean"], 5) for j, m in measured.items()},
                           **{k: row[k] for k in ("sampler", "guidance") if k in row},
                           "train_seconds": round(train_s, 1), "eval_seconds": round(time.perf_counter() - t, 1),
                           "resumed": resume, "commit": commit(), "machine": machine()}
        print(f"{family:<14} {row['steps']:>6} steps, seed {seed}, {samples} samples: FID {self.cache[key]['fid']}  "
              f"KID {self.cache[key]['kid']}", flush=True)
        save_cache(SEED_CACHE, self.cache)  # kept even with --no-save: a run costs up to an hour
        return self.cache[key]

    def gan_run_below(self, steps: int, seed: int) -> Path | None:
        """The finished GAN run of ``seed`` with the most steps below ``steps``, if any."""
        runs = [seed_run(self.runs_dir, "gan", r["steps"], seed, self.seed_steps.get("gan"))
                for r in self.saved["results"].get("gan", []) if r["steps"] < steps]
        done = [(Run.open(r).load_state()["step"], r) for r in runs if Run.resumable(r)]
        return max(done)[1] if done else None


def repeat_seeds(seeds: list[int], mark: float, runs_dir: Path, data: dict, save: bool) -> None:
    """Train ``SEED_FAMILIES`` with each seed to the steps of their recorded row at ``mark``
    minutes, measure each (``SeedMeasurer``), and re-judge after each."""
    saved = json.loads((RESULTS / "diffusion_quality.json").read_text())
    rows = seed_rows(saved, mark)
    missing = [f for f, r in rows.items() if r is None]
    if missing:
        sys.exit(f"no recorded {mark:g}-minute row for {', '.join(missing)} in diffusion_quality.json: run the "
                 f"benchmark with --families {','.join(SEED_FAMILIES)} first")
    measurer = SeedMeasurer(saved, runs_dir, data, mark)

    def record() -> None:
        apply_seed_verdict(saved, measurer.cache, mark)
        # The file's date and machine stay those of its rows; the seeds carry their own.
        saved["seeds"].update(date=time.strftime("%Y-%m-%d"), machine=machine())
        if save:
            print(f"wrote {write_json(RESULTS / 'diffusion_quality.json', saved)}")

    for seed in seeds:
        for family, row in rows.items():
            measurer.measure(family, row, seed)
            record()  # the verdict so far
    record()


def measure_curve(seed: int, mark: float, runs_dir: Path, data: dict, save: bool, confirm_samples: int = 0) -> None:
    """The like-for-like pair's curve in both judges: every recorded row of ``SEED_FAMILIES``
    (its minutes and steps), trained with ``seed`` and measured as the seeds are (the seed mark's
    rows come from the seeds' cache), shortest budgets first; written as ``curve`` after each.
    ``confirm_samples``: the seed mark's runs measured again on that many samples too."""
    saved = json.loads((RESULTS / "diffusion_quality.json").read_text())
    measurer = SeedMeasurer(saved, runs_dir, data, mark)
    todo = sorted(((f, r) for f in SEED_FAMILIES for r in saved["results"].get(f, [])),
                  key=lambda t: (t[1]["minutes"], SEED_FAMILIES.index(t[0])))
    curve = {"seed": seed, "samples": saved["samples"], "split": "test", "judges": list(SEED_JUDGES),
             "results": {f: [] for f in SEED_FAMILIES}}
    for family, row in todo:
        m = measurer.measure(family, row, seed)
        curve["results"][family].append({"minutes": row["minutes"], "steps": m["steps"], "fid": m["fid"],
                                         "kid": m["kid"], **{k: row[k] for k in ("sampler", "guidance") if k in row}})
        curve["results"][family].sort(key=lambda r: r["minutes"])
        curve["complete"] = sum(map(len, curve["results"].values())) == len(todo)
        saved["curve"] = {**curve, "date": time.strftime("%Y-%m-%d"), "machine": machine()}
        if save:
            print(f"wrote {write_json(RESULTS / 'diffusion_quality.json', saved)}")
    if confirm_samples:
        checks = {}
        for family, row in seed_rows(saved, mark).items():
            m = measurer.measure(family, row, seed, samples=confirm_samples)
            checks[family] = {"minutes": row["minutes"], "steps": m["steps"], "samples": m["samples"], "fid": m["fid"],
                              "kid": m["kid"], "eval_seconds": m["eval_seconds"]}
        saved["curve"]["confirmation"] = checks
        if save:
            print(f"wrote {write_json(RESULTS / 'diffusion_quality.json', saved)}")
    if save:
        plot_curve(saved["curve"], RESULTS / "diffusion_quality.png")
        last = saved["results"]["diffusion-cond"][-1]  # the docs' class grid: the longest-trained model
        run = seed_run(runs_dir, "diffusion-cond", last["steps"], seed, measurer.seed_steps["diffusion-cond"])
        save_class_grid(run, last["guidance"], row_sampling(last)["solver"])


def apply_seed_verdict(figures: dict, cache: dict, mark: float) -> None:
    """Judge the like-for-like pair at ``mark`` over the seeds cached for both families at their
    recorded rows' steps: per seed and judge, the GAN's FID minus the conditional diffusion's.
    Diffusion counts as better only when, under every judge of ``SEED_JUDGES``, that margin's
    mean minus its std is above 0 over at least 3 seeds; until 3 seeds are measured, the
    conditional family's single-run verdict (seed 0, in the retired judge the rows name) is
    withdrawn as pending."""
    rows = seed_rows(figures, mark)
    if None in rows.values():
        return
    entries = {f: {c["seed"]: c for k, c in cache.items() if k == seed_key(f, r["steps"], c["seed"])}
               for f, r in rows.items()}
    seeds = sorted(set.intersection(*(set(e) for e in entries.values())))
    judges = [] if not seeds else sorted({j for e in entries.values() for c in e.values() for j in c["fid"]},
                    key=lambda j: (j != SEED_JUDGES[0], j))
    by_judge = {}
    for judge in judges:
        fid = {f: [entries[f][s]["fid"][judge] for s in seeds] for f in SEED_FAMILIES}
        kid = {f: [entries[f][s]["kid"][judge] for s in seeds] for f in SEED_FAMILIES}
        margin = [round(g - d, 3) for g, d in zip(fid["gan"], fid["diffusion-cond"])]
        summary = summarise(margin, 3)
        by_judge[judge] = {"fid": fid, "kid": kid, "fid_summary": {f: summarise(v, 3) for f, v in fid.items()},
                           "kid_summary": {f: summarise(v, 5) for f, v in kid.items()},
                           "gan_minus_diffusion_fid": margin, "gan_minus_diffusion_summary": summary,
                           "diffusion_better": summary["n"] >= 3 and summary["mean"] - (summary["std"] or 0) > 0}
    better = None if len(seeds) < 3 else bool(by_judge) and all(v["diffusion_better"] for v in by_judge.values())
    figures["seeds"] = {"minutes": mark, "steps": {f: r["steps"] for f, r in rows.items()}, "seeds": seeds,
                        "by_judge": by_judge, "diffusion_better": better}
    single = figures.setdefault("single_run_met_by", list(figures.get("fid_target_met_by", [])))
    met_by = [f for f in single if f != "diffusion-cond"] + (["diffusion-cond"] if better else [])
    figures["fid_target_met_by"] = met_by
    figures["fid_target_met"] = bool(met_by)
    figures.pop("fid_target_pending", None)
    if better is None:
        figures["fid_target_pending"] = f"diffusion-cond vs gan: {len(seeds)} of 3 seeds measured"


def kept_confirmations(previous: dict, table: dict) -> dict:
    """The earlier results' confirmations whose rows are still in ``table``: same minutes, steps,
    sampler and guidance."""
    def key(r: dict) -> tuple:
        return r["minutes"], r["steps"], r.get("sampler"), r.get("guidance")

    kept = {}
    for family, checks in previous.get("confirmation", {}).items():
        checks = [checks] if isinstance(checks, dict) else checks  # files of f89c7c6: one check per family
        rows = {key(r) for r in table.get(family, [])}
        kept[family] = [c for c in checks if key(c) in rows]
    return {f: checks for f, checks in kept.items() if checks}


def confirm(table: dict, runs_dir: Path, n: int, data: dict, judge, done: dict) -> dict:
    """FID and KID of each family's last mark on ``n`` samples, with the sampler and guidance of its
    row, from the run directory that still holds that step (others are skipped, with a line);
    marks already confirmed on ``n`` samples (``done``) are not measured again."""
    real = real_images(data, n)
    out = {}
    for family, rows in table.items():
        run, last = runs_dir / f"bench-{family}-quality", rows[-1]
        if any((c["minutes"], c["steps"], c["samples"]) == (last["minutes"], last["steps"], n)
               for c in done.get(family, [])):
            continue
        if not (run / "config.json").exists() or Run.open(run).load_state()["step"] != last["steps"]:
            print(f"{family}: no run at step {last['steps']} in {runs_dir}; its {last['minutes']:g} min not confirmed")
            continue
        sampling = {k: last[k] for k in ("guidance", "sampler") if k in last}
        t = time.perf_counter()
        m = evaluate_generator(pixelforge.load(run, **row_sampling(last)), data, n, judge, metrics=("fid", "kid"),
                               real=real)
        out[family] = {"minutes": last["minutes"], "steps": last["steps"], "samples": n, "fid": round(m["fid"], 3),
                       "kid": round(m["kid_mean"], 5), "eval_seconds": round(time.perf_counter() - t, 1), **sampling}
        print(f"{family:<10} {last['minutes']:>5.1f} min  on {n} samples: FID {m['fid']:.3f}  KID {m['kid_mean']:.5f}",
              flush=True)
    return out


def save_class_grid(run: Path, guidance: float, solver: str) -> None:
    """100 samples of the conditional model, one class per column (labels cycle 0..9), 50 steps."""
    pipe = pixelforge.load(run, steps=50, guidance=guidance, solver=solver)
    save_grid(pipe.sample(10 * pipe.num_classes, seed=0), DOCS_IMAGES / "diffusion_cond_samples.png",
              nrow=pipe.num_classes, scale=2)


def plot_curve(curve: dict, path: Path) -> None:
    """FID against training time of the like-for-like pair, one panel per judge."""
    from matplotlib import ticker

    plt = pyplot()
    fig, axes = plt.subplots(1, len(curve["judges"]), figsize=(10, 3.8), dpi=100, squeeze=False)
    for ax, judge in zip(axes[0], curve["judges"]):
        for family, rows in curve["results"].items():
            ax.plot([r["minutes"] for r in rows], [r["fid"][judge] for r in rows], marker="o", label=family)
        ax.set_xlabel("training minutes (solo 2-core CPU equivalent)")
        ax.set_ylabel("FID")
        ax.set_title(f"{judge} features", fontsize=10)
        ax.set_yscale("log")
        for set_formatter in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
            set_formatter(ticker.FormatStrFormatter("%g"))  # 0.3, not 3 x 10^-1
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    fig.suptitle(f"seed {curve['seed']}, {curve['samples']} samples against as many test images", fontsize=10)
    save_figure(fig, path)
    print(f"wrote {path}")


def plot(table: dict, judge: str, samples: int, path: Path, confirmation: dict | None = None) -> None:
    """FID against training time; a GAN stopped early is drawn on as its best-so-far bound, and the
    larger-sample confirmations as open markers of the family's colour."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8.5, 4), dpi=100)
    end = max((r["minutes"] for rows in table.values() for r in rows), default=0)
    for family, rows in table.items():
        line, = ax.plot([r["minutes"] for r in rows], [r["fid"] for r in rows], marker="o", label=family)
        if family == "gan" and rows and rows[-1]["minutes"] < end:
            best = min(r["fid"] for r in rows)
            ax.plot([rows[-1]["minutes"], end], [best, best], "--", color=line.get_color(),
                    label="gan best so far (an upper bound: not trained further)")
        checks = (confirmation or {}).get(family, [])
        for i, n in enumerate(sorted({c["samples"] for c in checks})):
            ax.plot([c["minutes"] for c in checks if c["samples"] == n], [c["fid"] for c in checks if c["samples"] == n],
                    marker="os^D"[i % 4], mfc="none", ls="none", color=line.get_color(), label=f"{family}, {n} samples")
    ax.set_xlabel("training minutes (solo 2-core CPU equivalent)")
    ax.set_ylabel(f"FID ({judge} features)")
    ax.set_title(f"{samples} samples" + (" (open markers: as labelled)" if confirmation else ""), fontsize=10)
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0, fontsize=9)  # beside the axes
    save_figure(fig, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
