"""Within-question adaptation experiments: the flywheel's review loop simulated in seconds.

``grouper evaluate --mode flywheel`` is the benchmark of record (the oracle grades through the
edit log, the model fine-tuned on the train questions' log groups the other questions). This
script answers "does adaptation variant B save more actions than A?" quickly, with the
protocol's arithmetic and no store: the zero-shot grouping (:func:`grouper.clustering.group_embeddings`)
is reviewed largest group first; after each review (1 action + 1 per minority member) the
variant may regroup the answers not reviewed yet from the labels revealed so far.

Variants (``VARIANTS``): ``greedy`` builds the next group from the answers with the lowest
expected cost per answer under a grade model; ``argmax`` groups by predicted grade; ``split``
splits waiting groups by confident predictions; ``merge`` merges waiting groups predicted to
share a grade; ``recut`` (the product's, :mod:`grouper.grade_adaptation`) re-cuts the waiting
answers by k-means on the reference signals plus the grade model's log-probabilities. The grade
model is a logistic regression on reference signals and embeddings, fitted to the revealed
labels; ``prior`` variants add a cross-question model fitted on the corpus's train questions
(used only on the other splits).

Usage::

    .venv/bin/python benchmarks/flywheel_sim.py [--cache var/embeddings.sqlite] [variant ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.quality import embedder, load_corpora, references_of
from grouper.answers import normalize_text
from grouper.references import _recall


def z(v):
    s = v.std()
    return (v - v.mean()) / s if s > 1e-9 else np.zeros_like(v)


def features(q, texts, vectors, refs, embed):
    n = len(texts)
    blank = np.array([not t.strip() for t in texts], dtype=float)
    if refs is not None:
        cos = (vectors @ refs.vectors.T).max(axis=1)
        rec = _recall(texts, refs.texts, refs.question)
    else:
        cos = np.zeros(n)
        rec = np.zeros(n)
    qv = embed([normalize_text(q.text)])[0] if q.text else np.zeros(vectors.shape[1])
    qcos = vectors @ qv
    length = np.log1p(np.array([len(t.split()) for t in texts], dtype=float))
    cols = [z(cos), z(rec), cos, rec, z(qcos), z(length), blank]
    return np.column_stack(cols)


def prepare(questions, embed):
    out = []
    for q in questions:
        texts = [a.normalized for a in q.answers]
        vectors = embed(texts)
        refs = references_of(q, embed)
        from grouper.clustering import group_embeddings
        zs = group_embeddings(vectors, texts, None, references=refs)
        zs_groups = sorted([list(g.members) for g in zs.groups], key=lambda g: -len(g))
        out.append({"q": q, "texts": texts, "vectors": vectors, "f": features(q, texts, vectors, refs, embed),
                        "y": np.array([str(a.gold) for a in q.answers]), "zs": zs_groups})
    return out


def fit_prior(train, labels):
    from sklearn.linear_model import LogisticRegression
    X = np.concatenate([d["f"] for d in train])
    y = np.concatenate([d["y"] for d in train])
    m = LogisticRegression(C=1.0, max_iter=1000)
    m.fit(X, y)
    return m


def _review(members: np.ndarray, y: np.ndarray, revealed: np.ndarray) -> int:
    """The oracle's actions on one group (1 + its minority), and its labels revealed."""
    vals, counts = np.unique(y[members], return_counts=True)
    revealed[members] = True
    return 1 + int(np.sum(y[members] != vals[np.argmax(counts)]))


def simulate(d, prior, labels, C=1.0, use_within=True, emb_scale=1.0, min_group=2, knn=0, feat=True, policy="greedy", min_revealed=0, temp=1.0, split_conf=0.8, merge_conf=None, lam=1.0, kmin_grades=False):
    from sklearn.linear_model import LogisticRegression
    y = d["y"]
    n = len(y)
    P0 = np.full((n, len(labels)), 1.0 / len(labels)) if prior is None else prior.predict_proba(d["f"])
    cls = list(prior.classes_) if prior is not None else labels
    logp0 = np.log(np.clip(P0, 1e-6, 1))
    revealed = np.zeros(n, dtype=bool)
    actions = 0
    groups = 0
    Z = np.column_stack([logp0 if prior is not None else np.zeros((n, 0)), d["f"] if feat else np.zeros((n, 0)), emb_scale * d["vectors"]])
    zs = [list(g) for g in d["zs"]]
    while True:
        P = P0
        fitted = False
        if use_within and revealed.any():
            seen = np.unique(y[revealed])
            if len(seen) >= 2:
                m = LogisticRegression(C=C, max_iter=300)
                m.fit(Z[revealed], y[revealed])
                fitted = True
                Pw = m.predict_proba(Z)
                P = np.zeros_like(P0)
                for j, c in enumerate(m.classes_):
                    P[:, cls.index(c)] = Pw[:, j]
            elif len(seen) == 1:
                pass
        free = np.flatnonzero(~revealed)
        if len(free) < min_group:
            break
        if fitted and temp != 1.0:
            P = P ** (1.0 / temp)
            P /= P.sum(axis=1, keepdims=True)
        if (prior is None and not fitted) or revealed.sum() < min_revealed:
            zs = [[i for i in g if not revealed[i]] for g in zs]
            zs = sorted([g for g in zs if len(g) >= 2], key=lambda g: -len(g))
            if not zs:
                break
            members = np.array(zs.pop(0))
            actions += _review(members, y, revealed)
            groups += 1
            continue
        if policy == "recut" and fitted:
            from sklearn.cluster import KMeans
            zs = [[i for i in g if not revealed[i]] for g in zs]
            k_left = max(1, sum(1 for g in zs if len(g) >= 2))
            freei = np.flatnonzero(~revealed)
            if len(freei) < 2:
                break
            lp = np.log(np.clip(P[freei], 1e-4, 1))
            lp = lp - lp.mean(axis=1, keepdims=True)
            pts = np.column_stack([d["f"][freei, :2], lam * lp])
            if kmin_grades:
                k_left = max(k_left, len(np.unique(y[revealed])))
            k_left = min(k_left, len(freei))
            lab = KMeans(n_clusters=k_left, n_init=4, random_state=0).fit_predict(pts) if k_left > 1 else np.zeros(len(freei), int)
            zs = sorted([list(freei[lab == c]) for c in range(k_left) if (lab == c).sum() >= 1], key=lambda g: -len(g))
            zs = [g for g in zs if len(g) >= 2]
            if not zs:
                break
            members = np.array(zs.pop(0))
            actions += _review(members, y, revealed)
            groups += 1
            continue
        if policy == "split" and fitted:
            # keep zero-shot groups; split a remaining group by confident predicted label
            zs = [[i for i in g if not revealed[i]] for g in zs]
            new = []
            for g in zs:
                g = np.array(g, dtype=int)
                if len(g) == 0:
                    continue
                pred = P[g].argmax(axis=1)
                conf = P[g].max(axis=1)
                vals_, cnt_ = np.unique(pred, return_counts=True)
                main = vals_[np.argmax(cnt_)]
                out = (pred != main) & (conf >= split_conf)
                new.append(list(g[~out]))
                for j in np.unique(pred[out]):
                    new.append(list(g[out & (pred == j)]))
            if merge_conf is not None:
                # merge remaining groups whose members are confidently predicted the same grade
                bylab = {}
                rest = []
                for g in new:
                    g = np.array(g, dtype=int)
                    if len(g) == 0:
                        continue
                    pm = P[g].mean(axis=0)
                    j = int(pm.argmax())
                    if pm[j] >= merge_conf:
                        bylab.setdefault(j, []).extend(g.tolist())
                    else:
                        rest.append(g.tolist())
                new = rest + list(bylab.values())
            zs = sorted([g for g in new if len(g) >= 2], key=lambda g: -len(g))
            if not zs:
                break
            members = np.array(zs.pop(0))
            actions += _review(members, y, revealed)
            groups += 1
            continue
        if policy == "argmax":
            pred = P[free].argmax(axis=1)
            vals_, cnt_ = np.unique(pred, return_counts=True)
            j = vals_[np.argmax(cnt_)]
            members = free[pred == j]
            if len(members) < min_group:
                break
            actions += _review(members, y, revealed)
            groups += 1
            continue
        best = None
        for j in range(len(cls)):
            p = P[free, j]
            order = np.argsort(-p, kind="stable")
            cum = np.cumsum(1 - p[order])
            m_ = np.arange(1, len(order) + 1)
            cost = (1 + cum) / m_
            cost[: min_group - 1] = np.inf
            k = int(np.argmin(cost))
            if best is None or cost[k] < best[0]:
                best = (cost[k], j, free[order[: k + 1]])
        if best[0] >= 1.0:
            break
        members = best[2]
        actions += _review(members, y, revealed)
        groups += 1
    actions += int((~revealed).sum())
    return actions, groups


#: Every variant tried (results in benchmarks/results/flywheel_experiments.md).
VARIANTS = {
    "zero-shot": {"use_within": False, "noprior": True},
    "prior-only": {"use_within": False},
    "greedy C=1": {"C": 1.0},
    "greedy C=0.3": {"C": 0.3},
    "greedy C=3": {"C": 3.0},
    "greedy C=1 emb x3": {"C": 1.0, "emb_scale": 3.0},
    "greedy C=1 no prior": {"C": 1.0, "noprior": True},
    "greedy C=1 no signals": {"C": 1.0, "feat": False},
    "greedy C=10 T=2": {"C": 10, "temp": 2.0},
    "greedy C=10 T=2 after 30": {"C": 10, "temp": 2.0, "min_revealed": 30},
    "argmax C=10 no prior": {"C": 10, "noprior": True, "policy": "argmax"},
    "argmax C=10": {"C": 10, "policy": "argmax"},
    "argmax C=10 after 30": {"C": 10, "policy": "argmax", "min_revealed": 30},
    "split 0.7": {"C": 10, "noprior": True, "policy": "split", "split_conf": 0.7},
    "split 0.8": {"C": 10, "noprior": True, "policy": "split"},
    "split 0.9": {"C": 10, "noprior": True, "policy": "split", "split_conf": 0.9},
    "split 0.8 C=1": {"C": 1, "noprior": True, "policy": "split"},
    "merge 0.7": {"C": 10, "noprior": True, "policy": "split", "split_conf": 1.01, "merge_conf": 0.7},
    "merge 0.8": {"C": 10, "noprior": True, "policy": "split", "split_conf": 1.01, "merge_conf": 0.8},
    "merge 0.9": {"C": 10, "noprior": True, "policy": "split", "split_conf": 1.01, "merge_conf": 0.9},
    "split 0.9 merge 0.8": {"C": 10, "noprior": True, "policy": "split", "split_conf": 0.9, "merge_conf": 0.8},
    "recut w=1": {"C": 10, "noprior": True, "policy": "recut", "lam": 1.0},
    "recut w=0.5 (product)": {"C": 10, "noprior": True, "policy": "recut", "lam": 0.5},
    "recut w=0.3 C=1": {"C": 1, "noprior": True, "policy": "recut", "lam": 0.3},
    "recut w=1 C=1": {"C": 1, "noprior": True, "policy": "recut", "lam": 1.0},
    "recut w=0.5 k>=grades": {"C": 10, "noprior": True, "policy": "recut", "lam": 0.5, "kmin_grades": True},
    "recut w=1 k>=grades": {"C": 10, "noprior": True, "policy": "recut", "lam": 1, "kmin_grades": True},
}


def ceiling(data: list[dict]) -> None:
    """Print 5-fold accuracy within each question of classifiers trained on its own grades."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier

    res: dict = {}
    for d in data:
        y = d["y"]
        vals, counts = np.unique(y, return_counts=True)
        if len(vals) < 2 or counts.min() < 2:
            continue
        cv = StratifiedKFold(min(5, counts.min()), shuffle=True, random_state=0)
        both = np.column_stack([d["f"], d["vectors"]])
        models = {
            "signals": (d["f"], LogisticRegression(C=1, max_iter=500)),
            "embedding": (d["vectors"], LogisticRegression(C=1, max_iter=500)),
            "both C=1": (both, LogisticRegression(C=1, max_iter=500)),
            "both C=10": (both, LogisticRegression(C=10, max_iter=500)),
            "5-NN": (d["vectors"], KNeighborsClassifier(5, metric="cosine")),
        }
        out = {"majority": counts.max() / len(y)}
        out.update({k: float(np.mean(cross_val_predict(m, X, y, cv=cv) == y)) for k, (X, m) in models.items()})
        r = res.setdefault((d["q"].dataset, d["q"].split), {})
        for k, v in out.items():
            r.setdefault(k, []).append((v, len(y)))
    for key, r in sorted(res.items()):
        cells = " ".join(f"{k}={sum(v * n for v, n in vs) / sum(n for _, n in vs):.3f}" for k, vs in r.items())
        print(f"{key[0]}/{key[1]}: {cells}")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", help="variants to run (default: all)")
    parser.add_argument("--cache", default=str(REPO / "var/embeddings.sqlite"), help="embedding cache store")
    parser.add_argument("--ceiling", action="store_true", help="print the within-question 5-fold accuracies instead")
    args = parser.parse_args(argv)
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    embed = embedder(args.cache)
    t0 = time.time()
    data = prepare(load_corpora(), embed)
    print(f"prepared {len(data)} questions in {time.time() - t0:.0f}s", flush=True)
    if args.ceiling:
        ceiling(data)
        return 0
    for name in args.variants or VARIANTS:
        cfg = dict(VARIANTS[name])
        noprior = cfg.pop("noprior", False)
        res = {}
        for corpus in sorted({d["q"].dataset for d in data}):
            cd = [d for d in data if d["q"].dataset == corpus]
            labels = sorted({lab for d in cd for lab in d["y"]})
            prior_all = None if noprior else fit_prior([d for d in cd if d["q"].split == "train"], labels)
            for d in cd:
                # Train questions never see a prior learned on train questions.
                prior = None if d["q"].split == "train" else prior_all
                a, _ = simulate(d, prior, labels, **cfg)
                r = res.setdefault((corpus, d["q"].split), [0, 0, 0])
                r[0] += a
                r[1] += len(d["y"])
                _, counts = np.unique(d["y"], return_counts=True)
                r[2] += 1 + len(d["y"]) - counts.max()
        cells = " ".join(f"{k[0][-6:]}/{k[1][:6]} {a / n:.3f} ({a / o:.2f}x)" for k, (a, n, o) in sorted(res.items()))
        print(f"{name:<26} {cells}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
