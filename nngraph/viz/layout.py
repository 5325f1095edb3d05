"""A layered (Sugiyama-style) layout in pure Python; no Graphviz binary.

1. Cycles are broken by reversing DFS back edges (drawn with their real direction).
2. Layers by longest path from the sources; a source with successors moves
   down to just above its first consumer, so an input sits by its use.
3. An edge that spans several layers gets one dummy node per layer it crosses.
4. Crossings are reduced by barycenter sweeps, down and up, keeping the best
   order; nodes of one group (block) stay next to each other in every layer.
5. Coordinates along a layer minimise the squared distance of each node to the
   weighted mean of its neighbours under minimum-separation constraints (an
   isotonic regression solved exactly by pool-adjacent-violators), so no two
   boxes overlap and long edges run straight.
6. Routes: a straight stub from a box side to its layer band's edge, a curve
   across the empty gap between bands, and straight runs through the bands at
   dummy positions. The gap between bands holds no box and a stub stays in its
   own box's column, so no route passes through a box it does not connect.

Coordinates are computed along two abstract axes, `u` (along a layer) and `v`
(across layers), then mapped to x/y by `rankdir` (TB: u=x, v=y; LR: u=y, v=x).
"""

from __future__ import annotations

from dataclasses import dataclass, field

Rect = tuple[float, float, float, float]  # x, y, width, height


@dataclass
class Route:
    src: str
    dst: str
    points: list[tuple[float, float]]  # pairs: even segments are straight stubs, odd ones cross a gap
    reversed: bool = False


@dataclass
class Layout:
    width: float
    height: float
    boxes: dict[str, Rect]
    routes: list[Route]
    groups: dict[str, Rect]
    layers: dict[str, int]
    crossings: int
    rankdir: str = "TB"
    dummies: int = 0
    gaps: list[tuple[float, float]] = field(default_factory=list)  # v ranges holding no box


def _pava(target: list[float], weight: list[float]) -> list[float]:
    """Weighted isotonic (non-decreasing) regression by pool-adjacent-violators."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for t, w in zip(target, weight, strict=False):
        blocks.append([t, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            wt = w1 + w2
            blocks.append([(m1 * w1 + m2 * w2) / wt, wt, c1 + c2])
    out: list[float] = []
    for m, _, c in blocks:
        out.extend([m] * c)
    return out


def _inversions(seq: list[int]) -> int:
    """Pairs i < j with seq[i] > seq[j] (Fenwick tree)."""
    if not seq:
        return 0
    size = max(seq) + 2
    tree = [0] * (size + 1)
    inv = 0
    seen = 0
    for x in seq:
        i = x + 1
        le = 0
        while i > 0:
            le += tree[i]
            i -= i & -i
        inv += seen - le
        i = x + 1
        while i <= size:
            tree[i] += 1
            i += i & -i
        seen += 1
    return inv


def layout(
    sizes: dict[str, tuple[float, float]],
    edges: list[tuple[str, str]],
    groups: dict[str, tuple[str, ...]] | None = None,
    rankdir: str = "TB",
    node_gap: float = 24.0,
    rank_gap: float = 48.0,
    group_pad: float = 10.0,
    label_pad: float = 16.0,
    margin: float = 20.0,
    sweeps: int = 24,
) -> Layout:
    """Place boxes of the given (width, height) sizes; `groups` gives each node its enclosing groups."""
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"rankdir must be TB or LR, not {rankdir!r}")
    groups = groups or {}
    names = list(sizes)
    index = {n: i for i, n in enumerate(names)}
    tb = rankdir == "TB"
    su = {n: (w if tb else h) for n, (w, h) in sizes.items()}  # size along a layer
    sv = {n: (h if tb else w) for n, (w, h) in sizes.items()}  # size across layers
    path: dict[str, tuple[str, ...]] = {n: tuple(groups.get(n, ())) for n in names}

    # ---- 1. break cycles --------------------------------------------------------------------
    succ: dict[str, list[str]] = {n: [] for n in names}
    uniq: list[tuple[str, str]] = []
    seen_e: set[tuple[str, str]] = set()
    for a, b in edges:
        if a == b or (a, b) in seen_e:
            continue
        seen_e.add((a, b))
        uniq.append((a, b))
        succ[a].append(b)
    state: dict[str, int] = {}
    back: set[tuple[str, str]] = set()
    for root in names:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(succ[root]))]
        while stack:
            n, it = stack[-1]
            for m in it:
                s = state.get(m, 0)
                if s == 0:
                    state[m] = 1
                    stack.append((m, iter(succ[m])))
                    break
                if s == 1:
                    back.add((n, m))
            else:
                state[n] = 2
                stack.pop()
    dag: list[tuple[str, str, bool]] = []  # (from, to, reversed)
    for a, b in uniq:
        if (a, b) in back:  # kept when (b, a) is an edge too: a layer shared around another
            dag.append((b, a, True))
        else:
            dag.append((a, b, False))
    preds: dict[str, list[str]] = {n: [] for n in names}
    dsucc: dict[str, list[str]] = {n: [] for n in names}
    for a, b, _ in dag:
        preds[b].append(a)
        dsucc[a].append(b)

    # ---- 2. layers ----------------------------------------------------------------------------
    indeg = {n: len(preds[n]) for n in names}
    ready = [n for n in names if indeg[n] == 0]
    topo: list[str] = []
    while ready:
        ready.sort(key=lambda n: index[n], reverse=True)
        n = ready.pop()
        topo.append(n)
        for m in dsucc[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
    layer: dict[str, int] = {}
    for n in topo:
        layer[n] = max((layer[p] + 1 for p in preds[n]), default=0)
    for n in reversed(topo):  # move a node down towards its consumers when that shortens edges
        if dsucc[n] and len(dsucc[n]) > len(preds[n]):
            layer[n] = max(layer[n], min(layer[s] for s in dsucc[n]) - 1)
    nlayers = max(layer.values(), default=-1) + 1

    # ---- 3. dummy nodes -------------------------------------------------------------------------
    chains: list[tuple[str, str, bool, list[str]]] = []
    up: dict[str, list[str]] = {n: [] for n in names}  # neighbours in the layer above
    down: dict[str, list[str]] = {n: [] for n in names}
    is_dummy: dict[str, bool] = dict.fromkeys(names, False)
    ndummy = 0
    for a, b, rev in dag:
        chain = [a]
        common: tuple[str, ...] = ()
        for x, y in zip(path[a], path[b], strict=False):
            if x != y:
                break
            common += (x,)
        for lyr in range(layer[a] + 1, layer[b]):
            d = f"\0d{ndummy}"
            ndummy += 1
            layer[d] = lyr
            su[d], sv[d] = 2.0, 0.0
            path[d] = common
            is_dummy[d] = True
            up[d], down[d] = [], []
            chain.append(d)
        chain.append(b)
        for x, y in zip(chain, chain[1:], strict=False):
            down[x].append(y)
            up[y].append(x)
        chains.append((a, b, rev, chain))

    # ---- 4. order within layers ------------------------------------------------------------------
    layers: list[list[str]] = [[] for _ in range(nlayers)]
    first_seen: dict[str, float] = {}
    for n in topo:  # initial order: depth-first from the sources, so chains start together
        first_seen.setdefault(n, len(first_seen))
    for a, _b, _rev, chain in chains:
        for k, d in enumerate(chain[1:-1]):
            first_seen[d] = first_seen[a] + 0.001 * (k + 1)
    for n in sorted(layer, key=lambda n: first_seen.get(n, 0)):
        layers[layer[n]].append(n)
    pos: dict[str, float] = {}

    def renumber() -> None:
        for lay in layers:
            for i, n in enumerate(lay):
                pos[n] = i

    renumber()

    def hsort(items: list[str], bary: dict[str, float], level: int = 0) -> list[str]:
        buckets: dict[object, list[str]] = {}
        for n in items:
            key: object = path[n][level] if len(path[n]) > level else ("\0", n)
            buckets.setdefault(key, []).append(n)
        scored = []
        for key, members in buckets.items():
            if isinstance(key, tuple):
                scored.append((bary[members[0]], members))
            else:
                sub = hsort(members, bary, level + 1)
                scored.append((sum(bary[m] for m in sub) / len(sub), sub))
        scored.sort(key=lambda t: t[0])
        return [n for _, ms in scored for n in ms]

    def sweep_layer(i: int, ref: dict[str, list[str]]) -> None:
        lay = layers[i]
        bary = {}
        for n in lay:
            nb = ref[n]
            bary[n] = sum(pos[m] for m in nb) / len(nb) if nb else pos[n]
        layers[i] = hsort(lay, bary)
        for k, n in enumerate(layers[i]):
            pos[n] = k

    def crossings() -> int:
        total = 0
        for i in range(nlayers - 1):
            pairs = sorted((pos[a], pos[b]) for a in layers[i] for b in down[a])
            total += _inversions([int(b) for _, b in pairs])
        return total

    best = crossings()
    best_layers = [list(lay) for lay in layers]
    stale = 0
    for it in range(sweeps):
        if best == 0 or stale >= 4:
            break
        if it % 2 == 0:
            for i in range(1, nlayers):
                sweep_layer(i, up)
        else:
            for i in range(nlayers - 2, -1, -1):
                sweep_layer(i, down)
        c = crossings()
        if c < best:
            best, best_layers, stale = c, [list(lay) for lay in layers], 0
        else:
            stale += 1
    layers = best_layers
    renumber()

    # ---- 5. coordinates along layers ---------------------------------------------------------
    def sep(a: str, b: str) -> float:
        pa, pb = path[a], path[b]
        k = 0
        while k < len(pa) and k < len(pb) and pa[k] == pb[k]:
            k += 1
        bounds = (len(pa) - k) + (len(pb) - k)
        gap = node_gap if not (is_dummy[a] or is_dummy[b]) else node_gap / 2
        if is_dummy[a] and is_dummy[b]:
            gap = 8.0
        return (su[a] + su[b]) / 2 + gap + group_pad * bounds

    offs: list[list[float]] = []
    u: dict[str, float] = {}
    for lay in layers:
        o = [0.0]
        for a, b in zip(lay, lay[1:], strict=False):
            o.append(o[-1] + sep(a, b))
        offs.append(o)
        width = o[-1] if o else 0.0
        for n, x in zip(lay, o, strict=False):
            u[n] = x - width / 2

    def ew(a: str, b: str) -> float:
        return 8.0 if is_dummy[a] and is_dummy[b] else 2.0 if is_dummy[a] or is_dummy[b] else 1.0

    def place(i: int, refs: list[dict[str, list[str]]]) -> None:
        lay = layers[i]
        if not lay:
            return
        tgt, wts = [], []
        for n, o in zip(lay, offs[i], strict=False):
            sw, sx = 0.0, 0.0
            for ref in refs:
                for m in ref[n]:
                    w = ew(n, m)
                    sw += w
                    sx += w * u[m]
            if sw == 0:
                tgt.append(u[n] - o)
                wts.append(0.05)
            else:
                tgt.append(sx / sw - o)
                wts.append(sw)
        ys = _pava(tgt, wts)
        for n, y, o in zip(lay, ys, offs[i], strict=False):
            u[n] = y + o

    for it in range(8):
        if it % 2 == 0:
            for i in range(1, nlayers):
                place(i, [up])
        else:
            for i in range(nlayers - 2, -1, -1):
                place(i, [down])
    for _ in range(2):
        for i in range(nlayers):
            place(i, [up, down])

    # ---- v coordinates: bands and gaps ---------------------------------------------------------
    band: list[float] = []
    for lay in layers:
        band.append(max((sv[n] for n in lay if not is_dummy[n]), default=0.0))
    vtop: list[float] = []
    v = 0.0
    for i in range(nlayers):
        vtop.append(v)
        v += band[i] + rank_gap
    vcen = {n: vtop[layer[n]] + band[layer[n]] / 2 for n in layer}

    # ---- 6. routes -------------------------------------------------------------------------------
    out_ports: dict[str, list[int]] = {n: [] for n in names}
    in_ports: dict[str, list[int]] = {n: [] for n in names}
    for k, (a, b, _rev, _chain) in enumerate(chains):
        out_ports[a].append(k)
        in_ports[b].append(k)

    def spread(n: str, ks: list[int], other) -> dict[int, float]:
        ks = sorted(ks, key=lambda k: (u[other(k)], k))
        m = len(ks)
        step = min(14.0, su[n] * 0.7 / max(m - 1, 1))
        return {k: u[n] + (j - (m - 1) / 2) * step for j, k in enumerate(ks)}

    out_u: dict[int, float] = {}
    in_u: dict[int, float] = {}
    for n in names:
        out_u.update(spread(n, out_ports[n], lambda k: chains[k][3][1]))
        in_u.update(spread(n, in_ports[n], lambda k: chains[k][3][-2]))

    raw_routes: list[tuple[str, str, bool, list[tuple[float, float]]]] = []
    for k, (a, b, rev, chain) in enumerate(chains):
        la, lb = layer[a], layer[b]
        pts = [(out_u[k], vcen[a] + sv[a] / 2), (out_u[k], vtop[la] + band[la])]
        for d in chain[1:-1]:
            ld = layer[d]
            pts += [(u[d], vtop[ld]), (u[d], vtop[ld] + band[ld])]
        pts += [(in_u[k], vtop[lb]), (in_u[k], vcen[b] - sv[b] / 2)]
        raw_routes.append((a, b, rev, pts))

    # crossings counted on the straight chords across each gap
    gap_segs: dict[int, list[tuple[float, float]]] = {}
    for _a, _b, _rev, pts in raw_routes:
        for j in range(1, len(pts) - 1, 2):
            gi = int(round(pts[j][1] * 1000))
            gap_segs.setdefault(gi, []).append((pts[j][0], pts[j + 1][0]))
    ncross = 0
    for segs in gap_segs.values():
        for i in range(len(segs)):
            a1, a2 = segs[i]
            for j in range(i + 1, len(segs)):
                b1, b2 = segs[j]
                if abs(a1 - b1) > 1e-6 and abs(a2 - b2) > 1e-6 and (a1 - b1) * (a2 - b2) < 0:
                    ncross += 1

    # ---- groups ------------------------------------------------------------------------------------
    gheight: dict[str, int] = {}
    for n in names:
        p = path[n]
        for i, gid in enumerate(p):
            gheight[gid] = max(gheight.get(gid, 0), len(p) - 1 - i)
    grect_abs: dict[str, list[float]] = {}
    for n in layer:
        if is_dummy[n]:
            continue
        lo_u, hi_u = u[n] - su[n] / 2, u[n] + su[n] / 2
        lo_v, hi_v = vcen[n] - sv[n] / 2, vcen[n] + sv[n] / 2
        for gid in path[n]:
            r = grect_abs.get(gid)
            if r is None:
                grect_abs[gid] = [lo_u, lo_v, hi_u, hi_v]
            else:
                r[0], r[1] = min(r[0], lo_u), min(r[1], lo_v)
                r[2], r[3] = max(r[2], hi_u), max(r[3], hi_v)
    for gid, r in grect_abs.items():
        pad = group_pad * (gheight.get(gid, 0) + 1)
        vpad = min(pad, rank_gap / 4)
        r[0] -= pad
        r[2] += pad
        r[1] -= vpad + label_pad
        r[3] += vpad

    # ---- map to screen ------------------------------------------------------------------------------
    all_u = [u[n] - su[n] / 2 for n in layer] + [r[0] for r in grect_abs.values()]
    all_v = [vcen[n] - sv[n] / 2 for n in layer] + [r[1] for r in grect_abs.values()]
    u0 = min(all_u, default=0.0) - margin
    v0 = min(all_v, default=0.0) - margin
    umax = max([u[n] + su[n] / 2 for n in layer] + [r[2] for r in grect_abs.values()], default=0.0) + margin
    vmax = (
        max([vcen[n] + sv[n] / 2 for n in layer] + [r[3] for r in grect_abs.values()], default=0.0) + margin
    )

    def pt(uu: float, vv: float) -> tuple[float, float]:
        return (uu - u0, vv - v0) if tb else (vv - v0, uu - u0)

    def rect(lu: float, lv: float, hu: float, hv: float) -> Rect:
        x0, y0 = pt(lu, lv)
        x1, y1 = pt(hu, hv)
        return (x0, y0, x1 - x0, y1 - y0)

    boxes = {
        n: rect(u[n] - su[n] / 2, vcen[n] - sv[n] / 2, u[n] + su[n] / 2, vcen[n] + sv[n] / 2) for n in names
    }
    routes = []
    for a, b, rev, pts in raw_routes:
        sp = [pt(*p) for p in pts]
        if rev:
            routes.append(Route(b, a, sp[::-1], True))
        else:
            routes.append(Route(a, b, sp, False))
    grects = {gid: rect(*r) for gid, r in grect_abs.items()}
    gaps = [(vtop[i] + band[i] - v0, vtop[i + 1] - v0) for i in range(nlayers - 1)]
    w, h = (umax - u0, vmax - v0) if tb else (vmax - v0, umax - u0)
    return Layout(
        w,
        h,
        boxes,
        routes,
        grects,
        {n: layer[n] for n in names},
        ncross,
        rankdir,
        ndummy,
        gaps,
    )
