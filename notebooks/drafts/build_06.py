"""Builds notebooks/06_methods_compared.ipynb (cells only; execute separately).

    .venv/bin/python notebooks/drafts/build_06.py      # from the repository root
"""
from _builder import code, colab_cell, md, write


md(r"""
# 06 · The methods side by side: what the maps show, and how faithfully

**Paper.** *Intuitive visualization method for image classification tasks using CNNs*
(畳み込みニューラルネットワークを用いた画像分類タスクの直感的可視化方法), IPSJ Transactions on
Mathematical Modeling and Its Applications, Vol. 10 No. 2, July 2017 (seed 002 of the course's
paper collection), sections 4.6-4.7 and the discussion 5(4)-(5).

Notebook 03 built the paper's classifier, Generative Contribution Mappings (GCM), whose class
score *is* the mean of the map it shows. Here GCM meets the maps the paper compared it with:
**Guided Backpropagation** (GB), **Guided Grad-CAM** (GGCAM), **CAM** and **Grad-CAM**, all
computed on a plain CNN of about GCM's size (`cnn_cifar10`, the paper's section 4.4). The paper
compares them twice: as pictures (Fig. 10), and by one number, the **decline rate**
(乖離率, Eq. 13): how much accuracy is lost when the class is read off the *maps* instead of the
network. Beyond the paper we add three more maps on the same CNN (CAV from notebook 04,
single-pass occlusion in the spirit of notebook 02, Integrated Gradients) and three more
measures of faithfulness.

### What you'll learn
1. One calling convention for nine maps, `methods.attribute(method, model, images, targets)`,
   and the paper's distinction between a method's *weight map* and its *visual map*.
2. The paper's Fig. 10: what the CAM procedure (bicubic upscaling, jet colours, 0.7 : 0.2
   blend with the image) does to a map, next to GB, GGCAM, GCM's CWM and CCM as they are.
3. The decline rate (Eq. 13) in the paper's four ways (i)-(iv) on the CIFAR-10 test set, and
   whether the paper's finding holds for our models, checked in code.
4. Beyond the paper: deletion and insertion curves (Petsiuk et al. 2018), the
   model-parameter randomisation test (Adebayo et al. 2018), and one table that ranks all
   methods on all measures.
""")

colab_cell()

code(r"""
import copy
import csv
import inspect
import json
import math
import time
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from xai_helpers import class_maps, config, data, decline, methods, train, viz, widgets

START = time.perf_counter()
viz.setup()
config.set_seed(0)
print(config.mode_banner())
RETRAIN = False  # True: train both models here (quick mode: a few steps on the samples)
cnn = train.load_or_train("cnn_cifar10", retrain=RETRAIN)
gcm = train.load_or_train("gcm_cifar10", retrain=RETRAIN)
cifar = data.load("cifar10", "test", n=1_000)  # the 1,000 test images with exact pixels
classes = cifar.classes
""")

md(r"""
## 1. Nine methods, one call

Every map in this notebook comes from one function, `methods.attribute(method, model, images,
targets=None)`. It returns a tensor **N x T x C' x H x W**: N images, T classes (all 10 when
`targets=None`, or one per image), C' = 3 for maps with one value per input element (GB,
GGCAM, CCM, CAV, Integrated Gradients) and C' = 1 for maps with one value per pixel (CAM,
Grad-CAM, CWM, occlusion), always at the input's 32 x 32 (coarse maps are upscaled
bicubically, as the paper does). Signed maps stay signed.

On the plain CNN `cnn_cifar10`:
- **GB**: the gradient of the class score through ReLUs that only pass positive gradients back
  (Springenberg et al. 2015).
- **GGCAM**: GB times the upscaled Grad-CAM (Selvaraju et al. 2017).
- **CAM**: the last conv features weighted by the class's weights in the final linear layer
  (Zhou et al. 2016).
- **Grad-CAM**: the last conv features weighted by their mean gradient, then a ReLU (Selvaraju
  et al. 2017).

On GCM `gcm_cifar10`: **CWM**, the Class Weight Map (Eq. 1), and **CCM**, the Class
Contribution Map = CWM x image (Eq. 3).

Beyond the paper, on the plain CNN:
- **CAV**: paper 3's contributions at the input (notebook 04's fast path; here input x
  gradient).
- **occlusion**: the drop of the class logit when an 8 x 8 patch is set to black (paper 1's
  deletion, in one pass).
- **IG**: Integrated Gradients from a black image, 8 steps (Sundararajan et al. 2017).

The first five rows are the paper's comparison. For the paper, GCM's *weight map* is its CWM
(section 4.7: the CCM is the CWM multiplied with the image), so where the paper's claims are
checked below, "GCM" means the `cwm` rows; the `ccm` rows are extra.
""")

code(r"""
NETS = {"cnn_cifar10": cnn, "gcm_cifar10": gcm}
PLAN = {"guided_backprop": "cnn_cifar10", "guided_gradcam": "cnn_cifar10", "cam": "cnn_cifar10",
        "gradcam": "cnn_cifar10", "cwm": "gcm_cifar10", "ccm": "gcm_cifar10",
        "cav": "cnn_cifar10", "occlusion": "cnn_cifar10", "integrated_gradients": "cnn_cifar10"}
PAPER = ("guided_backprop", "guided_gradcam", "cam", "gradcam", "cwm")  # paper's five; GCM = CWM
TITLE = {name: methods.METHODS[name].title for name in PLAN}
x4 = cifar.images[:4]
print(f"{'method':<22}{'model':<13}{'maps of 4 images, all classes':<31}{'ms / image':>10}  source")
for name, model in PLAN.items():
    tick = time.perf_counter()
    maps = methods.attribute(name, NETS[model], x4)
    ms = 1e3 * (time.perf_counter() - tick) / len(x4)
    print(f"{name:<22}{model:<13}{str(tuple(maps.shape)):<31}{ms:>10.1f}  "
          f"{methods.METHODS[name].cite}")
""")

md(r"""
**What to notice.** T = 10: one call gives every class's map. GCM's maps cost one forward pass;
the gradient methods one forward and one vectorised backward pass for all ten classes;
occlusion one forward pass per patch; Integrated Gradients one pass per step.

How good are the two networks on these 1,000 images? And one exact property the decline rate
will rely on: by Eq. 4, the sum of a class's CCM over all its elements is R x C x D times the
class score, so the class with the largest CCM sum is GCM's prediction.
""")

code(r"""
logits = {name: train.predict(model, cifar.images) for name, model in NETS.items()}
for name, z in logits.items():
    print(f"{name}: {100 * (z.argmax(1) == cifar.labels).float().mean():.2f}% correct "
          f"on the {len(cifar):,} exact test images")
ccm_sums = methods.attribute("ccm", gcm, x4).flatten(2).sum(2)  # 4 x 10
assert torch.allclose(ccm_sums / (3 * 32 * 32), logits["gcm_cifar10"][:4], rtol=1e-4, atol=1e-5)
cwm_times_image = decline.class_sums(methods.attribute("cwm", gcm, x4), x4, "iv")  # way (iv)
assert torch.equal(cwm_times_image.argmax(1), logits["gcm_cifar10"][:4].argmax(1))
print("checked: sum of CCM / (R C D) = GCM's score; CWM x image picks GCM's class")
""")

md(r"""
## 2. Weight maps and visual maps (section 4.6, Fig. 10)

The paper separates a method's **weight map**, what the method computes, from its **visual
map**, what a user is shown:

- GB and GGCAM: the response map for the true class's output unit, shown as it is.
- CAM and Grad-CAM: an 8 x 8 weight map for the true class, upscaled bicubically x 4 to the
  input size, coloured with `jet`, and blended with the image as weight map : image = 0.7 : 0.2
  (the procedure of the CAM authors' demo code).
- GCM: the CWM and the CCM, shown as they are.

CAM and Grad-CAM at their own resolution, written out (the last conv block of `cnn_cifar10`,
`features`, gives 8 x 8 maps with 64 channels):
""")

code(r"""
def coarse_cam(x):
    # Zhou et al.: M_k = sum_d w_kd f_d, with f the 8 x 8 features before global average pooling
    with torch.no_grad():
        return torch.einsum("kd,ndhw->nkhw", cnn.fc.weight, cnn.features(cnn.centre(x)))

def coarse_gradcam(x):
    # Selvaraju et al. Eq. 1-2: channel weight = mean gradient of the class score, then a ReLU
    grads, act = class_maps.class_gradients(cnn, x, None, layer="features")  # N x K x D x 8 x 8
    return torch.relu(torch.einsum("nkd,ndhw->nkhw", grads.mean(dim=(-2, -1)), act)).detach()

cam8, gradcam8 = coarse_cam(x4), coarse_gradcam(x4)
# CAM's mean over the 8 x 8 map plus the bias is the logit; upscaled, both equal attribute's maps
assert torch.allclose(cam8.mean(dim=(-2, -1)) + cnn.fc.bias, logits["cnn_cifar10"][:4],
                      rtol=1e-4, atol=1e-4)
for name, coarse in (("cam", cam8), ("gradcam", gradcam8)):
    up = F.interpolate(coarse, size=(32, 32), mode=methods.UPSAMPLE, align_corners=False)
    assert torch.allclose(up, methods.attribute(name, cnn, x4)[:, :, 0], rtol=1e-4, atol=1e-4)
print("weight maps:", tuple(cam8.shape), "-> upscaled to", tuple(up.shape), f"({methods.UPSAMPLE})")
""")

md(r"""
The CAM procedure itself is `decline.blend`, the same function the decline rate uses in its
way (iii). The paper does not say how the map is scaled before it is coloured; we use min-max
per image (for one class, as here, that is the demo code's per-map range; section 4 says why
the range covers all classes of an image there):
""")

code(r"""
head, doc, body = inspect.getsource(decline.blend).split('\"\"\"')
print(head.rstrip() + "\n" + body.lstrip("\n"))
""")

md(r"""
Now the paper's Fig. 10, columns (a)-(i), plus our three extra methods, for a few test images
that both networks classify correctly, each map for the true class. How each kind of map is
drawn:

- GB, GGCAM and CCM have one value per colour channel: drawn as an RGB image with 0 at
  mid-grey, `0.5 + map / (2 max |map|)` (the usual way to show GB "as is").
- CAM and CWM are signed: red positive, blue negative, white 0. Grad-CAM is >= 0 (its ReLU).
  CAV and IG are summed over the colour channels (paper 3's way to show CAV) and drawn signed.
- Every map is scaled to its own maximum: the figure compares shapes, not magnitudes.
""")

code(r"""
COLUMNS = ["(a)\noriginal", "(b)\nGB", "(c)\nGGCAM", "(d) CAM\nweight map", "(e) CAM\nvisual map",
           "(f) Grad-CAM\nweight map", "(g) Grad-CAM\nvisual map", "(h) GCM\nCWM", "(i) GCM\nCCM",
           "CAV\n(sum over RGB)", "occlusion\n(8 x 8 patches)", "IG\n(sum over RGB)"]

def fig10_cells(x, target):
    # one row of cells per image: the maps of class target[i] (an (N,) tensor), Fig. 10's columns
    m = {n: methods.attribute(n, NETS[model], x, target)[:, 0] for n, model in PLAN.items()}
    i = torch.arange(len(x))
    cam_w, grad_w = coarse_cam(x)[i, target], coarse_gradcam(x)[i, target]
    cam_v, grad_v = (decline.blend(m[n][:, None], x)[:, 0] for n in ("cam", "gradcam"))
    return [[("image", x[r]), ("signed_rgb", m["guided_backprop"][r]),
             ("signed_rgb", m["guided_gradcam"][r]), ("signed", cam_w[r]), ("jet", cam_v[r]),
             ("unsigned", grad_w[r]), ("jet", grad_v[r]), ("signed", m["cwm"][r]),
             ("signed_rgb", m["ccm"][r]), ("signed", m["cav"][r].sum(0)),
             ("signed", m["occlusion"][r]), ("signed", m["integrated_gradients"][r].sum(0))]
            for r in range(len(x))]
""")

code(r"""
right = torch.stack([z.argmax(1) == cifar.labels for z in logits.values()]).all(0)
pool = torch.nonzero(right).flatten() if int(right.sum()) >= 10 else torch.arange(len(cifar))
SHOW = [int(pool[cifar.labels[pool] == c][0]) for c in (0, 1, 2, 3, 7, 8)
        if (cifar.labels[pool] == c).any()][:5]
SHOW = SHOW if len(SHOW) >= 3 else pool[:4].tolist()  # weak models: any four images
print(f"{int(right.sum())} of {len(cifar):,} images are classified correctly by both networks; "
      f"shown: {SHOW}")
fig = viz.panel_grid(fig10_cells(cifar.images[SHOW], cifar.labels[SHOW]), col_titles=COLUMNS,
                     row_labels=[f"#{i} {classes[cifar.labels[i]]}" for i in SHOW],
                     title="Fig. 10 and three more methods: maps of the true class (columns "
                           "(a)-(i) as in paper 2; (h)-(i) on gcm_cifar10, others on cnn_cifar10)")
""")

md(r"""
**What to notice** (the paper's reading, 5(4), and what to check for yourself):

- (d) and (f) are 8 x 8: the visual maps (e) and (g) owe their smooth look to the bicubic
  upscaling and the jet colours, not to the network. Compare (d) with (e) cell by cell.
- (b) and (c) have the input's full resolution. Do they show the object, or mostly its edges?
  Does GB change when you change the class (section 3)?
- (h) and (i) are at full resolution with no post-processing; the CCM shows the image itself
  where the CWM is positive. Does it light up the object or its background?
- The three extra maps: occlusion is blocky by design (8 x 8 patches); CAV and IG are pixel-level
  and signed. Which of them agree with CAM about *where* the evidence is?

## 3. Explore: any image, any class

Top: the same columns for the image and class you choose. Bottom: the step from a map to the
decline rate of section 4. For each method, every class's visual map (made in the way you
choose) is summed over all its elements; the class with the largest sum, framed black, is the
class "read off the map". Where it is not the network's class, that image counts against the
method in Eq. 13.
""")

code(r"""
WAY_OPTIONS = [(f"({w}) {decline.WAY_NAMES[w]}", w) for w in decline.WAYS]

def render(image: int, cls: int, way: str):
    x = cifar.images[image:image + 1]
    sums = torch.stack([decline.class_sums(methods.attribute(n, NETS[m], x), x, way)[0]
                        for n, m in PLAN.items()])  # methods x classes
    fig = plt.figure(figsize=(15.5, 7.4), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.3])
    viz.panel_grid(fig10_cells(x, torch.tensor([cls])), col_titles=COLUMNS, fig=top,
                   title=f"test image {image} (true class: {classes[cifar.labels[image]]}): "
                         f"maps of class '{classes[cls]}'")
    viz.class_sum_grid(bottom.subplots(), sums, [TITLE[n] for n in PLAN], classes,
                       label=int(cifar.labels[image]),
                       title=f"way ({way}) {decline.WAY_NAMES[way]}: sum of each class's visual "
                             f"map (black frame: largest sum; red: true class)")
    return fig

plt.close(render(1, 0, "iii"))  # what the widget draws, for another setting
fig = render(SHOW[0], int(cifar.labels[SHOW[0]]), "i")
""")

code(r"""
widgets.interact_view(render, image=widgets.index_slider(len(cifar), value=SHOW[0]),
                      cls=widgets.class_slider(classes, value=int(cifar.labels[SHOW[0]])),
                      way=widgets.choice_slider(WAY_OPTIONS, description="way"))
""", tags=["nbval-ignore-output"])

md(r"""
**What to look for.** In way (i), compare each row's black frame with the network's
prediction. CAM's sums are, up to the bias and the upscaling, its logits (section 2), and the
CCM's sums are exactly GCM's scores. GB's and Grad-CAM's sums are not scores of anything: where
do they point? In way (iii) every map is turned into colours between fixed limits, so watch
how much of the ordering survives.

## 4. The decline rate (section 4.7, Eq. 13)

The paper's test of whether a map reflects the classification:

1. (A) = the accuracy of the network.
2. For every test image, make every class's visual map and **sum it over all its elements**;
   use the sums as class scores. (B) = the accuracy of these scores.
3. $$\text{decline rate} = \frac{(A) - (B)}{(A)} \qquad \text{(Eq. 13)}$$
   Smaller is better: 0 means the maps classify exactly as well as the network. It can be
   negative when the maps happen to classify better than the network.

Each method's weight map is made into a visual map in four ways (GB's and GGCAM's response maps
serve as their weight maps): **(i)** the weight map as it is; **(ii)** its absolute value;
**(iii)** the weighted blend with the input (the CAM procedure of section 2); **(iv)** the
multiplicative blend, weight map x input. The paper leaves the details of (iii) open; our
choices: a map with three channels is summed over them before colouring, the min-max range
covers all ten class maps of an image (with one range per class map every map would span the
full jet scale and the sums could hardly differ), and the sum runs over the three colour
channels of the blend.

The paper's Table 8 is lost; its text says GCM has the lowest decline rate in ways (i), (ii) and
(iv), and GGCAM in way (iii). The full experiment (all 10,000 test images, nine methods, four
ways) is `benchmarks/bench_decline.py`, which writes `data/results/decline_rate_cifar10.csv`;
this notebook reads that table. Only if it is missing does the notebook compute a table itself,
on a small sample.
""")

code(r"""
CSV = config.RESULTS_DIR / "decline_rate_cifar10.csv"
if CSV.exists():
    with open(CSV) as f:
        table = [{**r, **{k: float(r[k]) for k in ("accuracy_a", "accuracy_b", "decline_rate")},
                  "n_images": int(r["n_images"])} for r in csv.DictReader(f)]
    SOURCE = f"the committed table, {table[0]['n_images']:,} test images"
    print(f"read {CSV.name} ({len(table)} rows), written by benchmarks/bench_decline.py")
else:
    sample = cifar.subset(slice(0, config.pick(200, 1_000)))
    tick = time.perf_counter()
    table = [r.as_row() for name, model in PLAN.items()
             for r in decline.decline_rate(NETS[model], name, sample.images, sample.labels)]
    SOURCE = f"a SMALL SAMPLE of {len(sample):,} test images, NOT the full test set"
    print("=" * 100)
    print(f"NOTE: {CSV.relative_to(config.ROOT)} does not exist. The table below is a "
          f"SMALL-SAMPLE table,\ncomputed here on the first {len(sample):,} test images in "
          f"{time.perf_counter() - tick:.0f} s. It is NOT the full-test-set result.\n"
          f"Run `python benchmarks/bench_decline.py` (full mode) to write the committed table, "
          f"then run this notebook again.")
    print("=" * 100)
rate = {(r["method"], r["way"]): r["decline_rate"] for r in table}
row_of = {(r["method"], r["way"]): r for r in table}
""")

code(r"""
WAYS = decline.WAYS
print(f"Decline rate per method and way, on {SOURCE}")
print(f"{'method':<10}{'model':<13}{'A':>7}" + "".join(f"{'B (' + w + ')':>9}" for w in WAYS)
      + "".join(f"{'rate (' + w + ')':>11}" for w in WAYS))
for name, model in PLAN.items():
    r = [row_of[name, w] for w in WAYS]
    print(f"{TITLE[name]:<10}{model:<13}{r[0]['accuracy_a']:>7.4f}"
          + "".join(f"{x['accuracy_b']:>9.4f}" for x in r)
          + "".join(f"{x['decline_rate']:>+11.4f}" for x in r))
n_dec, a_cnn = table[0]["n_images"], row_of["cam", "i"]["accuracy_a"]
below = [f"{TITLE[n]} ({w})" for n in PLAN for w in WAYS if row_of[n, w]["accuracy_b"] < 1 / len(classes)]
print(f"(B) below chance (1/{len(classes)}): {', '.join(below) or 'none'}")
u = torch.linspace(0, 1, 5)
print("jet's R + G + B at " + ", ".join(f"{a:.2f}: {b:.2f}" for a, b in zip(u.tolist(), decline.jet(u).sum(-1).tolist())))
print(f"one image more or less correct changes a decline rate by about 1 / (n A) = "
      f"{1 / (n_dec * a_cnn) if a_cnn else float('nan'):.4f} (n = {n_dec:,})")
""")

code(r"""
fig, ax = plt.subplots(figsize=(10, 4.2), layout="constrained")
for k, way in enumerate(WAYS):
    ax.bar([i + (k - 1.5) * 0.2 for i in range(len(PLAN))], [rate[n, way] for n in PLAN], 0.2,
           label=f"({way}) {decline.WAY_NAMES[way]}")
ax.axhline(0, c="k", lw=0.8)
ax.axvline(len(PAPER) - 0.5, c="grey", ls="--", lw=1)
ax.text(len(PAPER) - 0.45, ax.get_ylim()[1], "beyond the paper ->", va="top", fontsize=8,
        color="grey")
ax.set_xticks(range(len(PLAN)), [TITLE[n] for n in PLAN])
ax.set(ylabel="decline rate (A - B) / A  (lower is better)",
       title=f"Decline rate (Eq. 13) per method and way, on {SOURCE}")
fig.legend(loc="outside lower center", ncols=4, fontsize=7)
""")

md(r"""
**Does the paper's finding hold here?** The paper (5(5)): among its five methods GCM has the
lowest decline rate in ways (i), (ii) and (iv), GGCAM in way (iii). The cell below reads the
lowest method per way off the table (ties are listed together) and compares.
""")

code(r"""
CLAIM = {"i": "cwm", "ii": "cwm", "iii": "guided_gradcam", "iv": "cwm"}  # paper 2, 5(5)
held = 0
for way in WAYS:
    five = {n: rate[n, way] for n in PAPER if math.isfinite(rate[n, way])}
    if CLAIM[way] not in five:
        print(f"({way:>3}) cannot be judged: {TITLE[CLAIM[way]]} has no finite decline rate")
        continue
    low = min(five.values())
    lowest = [TITLE[n] for n, v in five.items() if v == low]
    runner_up = min((v for v in five.values() if v > low), default=float("nan"))
    agrees = five[CLAIM[way]] == low
    held += agrees
    nine = min(v for n in PLAN if math.isfinite(v := rate[n, way]))
    print(f"({way:>3}) lowest of the paper's five: {' = '.join(lowest)} ({low:+.4f}; next "
          f"{runner_up:+.4f}); paper: {TITLE[CLAIM[way]]} -> {'agrees' if agrees else 'DISAGREES'}"
          f"{' (shared lowest)' if agrees and len(lowest) > 1 else ''} | lowest of all nine: "
          f"{' = '.join(TITLE[n] for n in PLAN if rate[n, way] == nine)}")
print(f"\nThe paper's finding holds in {held} of 4 ways, on {SOURCE}.")
""")

code(r"""
report_file = CSV.with_suffix(".json")
if CSV.exists() and report_file.exists():
    report = json.loads(report_file.read_text())
    m = report["machine"]
    print(f"benchmark run: {report['n_images']:,} images in {report['total_s']:.0f} s on "
          f"{m['device']} ({m['cpu_count']} CPU cores, {report['threads']} torch threads, "
          f"torch {m['torch']})")
    for name, t in report["methods"].items():
        print(f"  {name:<22}{t['images_per_s']:>8.1f} images/s (10 class maps each); batched x"
              f"{t['speedup_over_loop']:.0f} faster than one call per image and class")
else:
    print("no benchmark record (data/results/decline_rate_cifar10.json) yet")
""")

md(r"""
**What to look for.** Way (iv) for GCM is 0 *by construction* (up to float rounding in a near
tie): CWM x image is the CCM, whose sum is GCM's score times R x C x D (section 1), so its
decline is not evidence, it is Eq. 4; the paper says so itself ("当然", naturally). The
interesting rows are the others. In way (i), CAM's sums are its logits minus the bias, slightly
changed by the upscaling, so a small decline in (i) is to be expected for CAM as well, which
the paper's text does not mention: is it small? Way (ii) throws away the sign: which methods
lose most there? Way (iii) adds the same image term to every class and squeezes each map into
the jet colours: ask whether its column says more about the colouring than about the method.
Where (B) falls *below chance* (the line under the table), the blend's sums do not just lose
the class, they point away from it. The reason is in the colour map: jet's R + G + B is largest
in the middle of its range (green-yellow) and smallest at both ends (dark blue, dark red), as the
second line under the table prints. If the strongest values of an image's ten maps (large
positive or large negative) belong to the class the network picks, that class's map is pushed
to the dark ends and sums *low*, while a weak class's map sits in the bright middle. (Exercise:
check it for GB on a few images.)
And the table compares maps of *two different networks*: (A) differs between the CNN rows and
the GCM rows.

## 5. Beyond the paper: deletion and insertion (Petsiuk et al. 2018)

The decline rate asks whether the *sum* of the maps ranks the classes as the network does. A
second question is whether the map's *order of pixels* is right: delete the pixels the map
calls most important first (set them to black) and watch the probability of the true class;
a faithful map makes it fall fast (**deletion**, lower area is better). Or start from a blurred
image and put the pixels back, most important first (**insertion**, higher area is better).
Each method's map for the true class is summed over the colour channels and ranks the pixels,
most positive first; 16 steps of 1/16 of the pixels each. A random order shows the level to
beat, for each network.
""")

code(r"""
N_CURVES = config.pick(16, 100)
probe = cifar.subset(slice(0, N_CURVES))
curves = {}
for name, model in PLAN.items():
    maps = methods.attribute(name, NETS[model], probe.images, probe.labels)
    curves[name] = (decline.deletion_curve(NETS[model], probe.images, probe.labels, maps),
                    decline.insertion_curve(NETS[model], probe.images, probe.labels, maps))
noise = torch.rand(N_CURVES, 1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
chance = {m: (decline.deletion_curve(net, probe.images, probe.labels, noise),
              decline.insertion_curve(net, probe.images, probe.labels, noise))
          for m, net in NETS.items()}
print(f"{'':<10}{'deletion area':>15}{'insertion area':>16}   ({N_CURVES} images; deletion: "
      f"lower is better, insertion: higher)")
for name in PLAN:
    print(f"{TITLE[name]:<10}{curves[name][0].area:>15.4f}{curves[name][1].area:>16.4f}")
for m, (d, i) in chance.items():
    print(f"{'random':<10}{d.area:>15.4f}{i.area:>16.4f}   random order on {m}")
for k, kind in enumerate(("deletion", "insertion")):
    beat = [TITLE[n] for n in PLAN if (curves[n][k].area < chance[PLAN[n]][k].area) == (k == 0)]
    print(f"{kind}: {len(beat)} of {len(PLAN)} maps beat the random order of their own network"
          f"{': ' + ', '.join(beat) if beat else ''}")
""")

code(r"""
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for k, (ax, kind) in enumerate(zip(axes, ("deletion", "insertion"))):
    for j, name in enumerate(PLAN):
        c = curves[name][k]
        ax.plot(c.fractions, c.scores.mean(0), c=f"C{j}", label=f"{TITLE[name]} ({c.area:.3f})")
    for m, ls in (("cnn_cifar10", "--"), ("gcm_cifar10", ":")):
        c = chance[m][k]
        ax.plot(c.fractions, c.scores.mean(0), c="grey", ls=ls, label=f"random, {m} ({c.area:.3f})")
    ax.set(xlabel=f"share of pixels {'deleted' if k == 0 else 'inserted'}",
           ylabel="mean softmax probability of the true class",
           title=f"{kind.capitalize()} curves ({N_CURVES} images; area in brackets)")
    ax.legend(fontsize=6)
fig.tight_layout()
""")

md(r"""
**What to look for.** Compare every curve with the random line *of its own network* (dashed for
the CNN, dotted for GCM): the two networks may react differently to black pixels and to blur,
so areas of CNN maps and GCM maps are not directly comparable. Grad-CAM can be 0 on much of the
image (its ReLU), and once its positive pixels are used up the rest of the order is by position
(top-left first), not by evidence: watch where its curves bend. Deleting to black is itself a
change of the image that the network may read as evidence for some class, which is why
insertion starts from a blurred image instead. And check the count printed above: deleting
pixels in *random* order scatters isolated black dots over the whole image, a texture the
networks never saw in training; if that destroys the prediction faster than deleting a map's
most important pixels first, the deletion area measures the networks' dislike of the
deletion pattern more than the maps, and insertion is the more telling of the two curves here.

## 6. Beyond the paper: the randomisation sanity check (Adebayo et al. 2018)

If a map explains what the network *learned*, it must change when the learned weights are
destroyed. The cascading test re-initialises the layers one after the other, from the output
towards the input, and after each step compares the map (absolute values, summed over the
colour channels) with the original by Spearman rank correlation. A map that stays correlated
with its original although the network is now random says more about the image than about the
network. Lower is better.
""")

code(r"""
N_RANDOM = config.pick(8, 50)
tick = time.perf_counter()
few, few_labels = probe.images[:N_RANDOM], probe.labels[:N_RANDOM]
checks = {name: decline.randomisation_check(NETS[model], name, few, few_labels)
          for name, model in PLAN.items()}
print(f"{'':<10}{'mean Spearman correlation':>27}{'after the whole cascade':>26}   "
      f"({N_RANDOM} images, {time.perf_counter() - tick:.0f} s)")
for name, r in checks.items():
    print(f"{TITLE[name]:<10}{r.score:>27.3f}{r.correlation[-1].mean():>26.3f}")
""")

code(r"""
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [11, 15]})
for ax, model in zip(axes, NETS):
    for j, (name, r) in enumerate(checks.items()):
        if PLAN[name] == model:
            ax.plot(range(1, len(r.layers) + 1), r.correlation.mean(1), "o-", c=f"C{j}",
                    label=TITLE[name])
    layers = next(r.layers for n, r in checks.items() if PLAN[n] == model)
    short = [n.replace(".conv", "").split(".")[-1] for n in layers]
    ax.set_xticks(range(1, len(layers) + 1), short, rotation=60, fontsize=7)
    ax.axhline(0, c="k", lw=0.8)
    ax.set(ylim=(min(-0.2, ax.get_ylim()[0]), 1.05),
           xlabel="re-initialised up to this layer (from the output)",
           ylabel="Spearman correlation with the original map",
           title=f"Cascading randomisation, {model} ({N_RANDOM} images)")
    ax.legend(fontsize=7)
fig.tight_layout()
""")

md(r"""
And what the maps of one image look like once every layer is re-initialised (the same cascade,
carried to the end):
""")

code(r"""
def randomised(model):
    net = copy.deepcopy(model)
    for i, layer in enumerate(decline.cascade_layers(model, probe.images)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(i)  # as decline.randomisation_check with seed=0
            net.get_submodule(layer).reset_parameters()
    return net

RANDOM = {m: randomised(net) for m, net in NETS.items()}
x1, y1 = cifar.images[SHOW[:1]], cifar.labels[SHOW[:1]]
rows = [[("image", x1[0])] + [("signed", methods.attribute(n, nets[m], x1, y1)[0, 0].sum(0))
                              for n, m in PLAN.items()] for nets in (NETS, RANDOM)]
fig = viz.panel_grid(rows, col_titles=["image"] + [TITLE[n] for n in PLAN],
                     row_labels=["trained", "all re-initialised"], size=1.4,
                     title=f"Test image {SHOW[0]} ({classes[y1[0]]}): maps of the true class "
                           f"(summed over RGB), trained network vs every layer re-initialised")
""")

md(r"""
**What to look for.** A map that passes keeps little of its shape in the bottom row. Maps that
multiply something by the input (CCM = CWM x image, CAV and IG = input x gradient) carry the
image's own structure even when the network is random: their correlation may stay well above
0.
Guided Backpropagation is the case Adebayo et al. made famous: its guided ReLUs make it close to
an edge detector of the image, whatever the weights. Which of our maps behave like that?

## 7. One table: every method on every measure

Each method's measures, and its rank on each (1 = best, in the measure's direction: lower decline
rate, lower deletion area, higher insertion area, lower randomisation correlation), sorted by
the mean rank (`decline.summary_table`). The decline rates come from section 4's table, the
other measures from sections 5 and 6. (`decline.measures(model, method, images, labels)`
computes all of them on one image set in one call.)
""")

code(r"""
results = {name: {**{f"decline_{w}": rate[name, w] for w in WAYS},
                  "deletion": curves[name][0].area, "insertion": curves[name][1].area,
                  "randomisation": checks[name].score} for name in PLAN}
summary = decline.summary_table(results)
MEASURES = list(decline.DIRECTIONS)
print(f"Summary: decline rate on {SOURCE}; deletion and insertion on {N_CURVES} images, "
      f"randomisation on {N_RANDOM} images; value (rank)")
print(f"{'':<10}" + "".join(f"{m:>15}" for m in MEASURES) + f"{'mean rank':>11}")
print(f"{'better:':<10}"
      + "".join(f"{'higher' if decline.DIRECTIONS[m] else 'lower':>15}" for m in MEASURES))
for row in summary:
    cells = [f"{row[m]:+.3f} ({row.get('rank_' + m, '-')})" for m in MEASURES]
    print(f"{TITLE[row['method']]:<10}" + "".join(c.rjust(15) for c in cells)
          + f"{row['mean_rank']:>11.2f}")
for m in MEASURES:
    best = [TITLE[r["method"]] for r in summary if r.get("rank_" + m) == 1]
    print(f"best on {m}: {', '.join(best)}")
""")

code(r"""
ranks = torch.tensor([[float(row.get("rank_" + m, float("nan"))) for m in MEASURES]
                      for row in summary])
fig, ax = plt.subplots(figsize=(9, 4.4))
viz.number_grid(ax, ranks, fmt="{:.0f}", signed=False, cbar_label="rank (1 = best)",
                title=f"Ranks per measure (1 = best). Decline rate: {SOURCE};\n"
                      f"deletion, insertion: {N_CURVES} images; randomisation: {N_RANDOM} images")
ax.set_aspect("auto")
ax.set_xticks(range(len(MEASURES)), MEASURES, rotation=30, fontsize=7)
ax.set_yticks(range(len(summary)), [TITLE[r["method"]] for r in summary], fontsize=7)
fig.tight_layout()
print(f"notebook run time so far: {time.perf_counter() - START:.0f} s")
""")

md(r"""
**What to look for.** Do the columns agree? The decline rate rewards maps whose *sums* track the
class scores, deletion and insertion reward the right *order of pixels*, the randomisation check
rewards *dependence on the weights*. A method can win one and lose another, and the mean rank
weighs four decline columns against three others, a choice, not a law. Also keep the sample
sizes of the title in mind before reading much into a rank difference of one.

## Summary
- Nine maps, one call: `methods.attribute(method, model, images, targets)` returns N x T x C' x
  H x W for any of them; the paper's five (GB, GGCAM, CAM, Grad-CAM on a plain CNN, GCM's CWM and
  CCM) and three more (CAV, occlusion, Integrated Gradients).
- The paper's Fig. 10: CAM and Grad-CAM are computed at 8 x 8; their familiar look comes from
  the visualisation procedure (bicubic, jet, 0.7 : 0.2 blend), which the decline rate's way (iii)
  reproduces.
- The decline rate (Eq. 13) measures how well the maps' sums classify; for GCM it is 0 in way
  (iv) by construction. Section 4 checked the paper's finding on our table, way by way.
- Beyond the paper, deletion, insertion and the randomisation check measure other sides of
  faithfulness; the summary table puts all measures side by side, so you can see where they
  agree and where they do not.

## Exercises
1. Way (iii) with the CAM demo's per-map range: compute `decline.class_sums(maps, x, "iii")`
   with `decline.blend(maps, x, scale="map")` instead for CAM on 200 test images. What happens
   to (B), and why?
2. Deletion to a blurred image instead of black (`baseline="blur"` in `decline.deletion_curve`).
   Does the order of the methods change?
3. Grad-CAM at an earlier layer: `methods.attribute("gradcam", cnn, x, layer="features.layer5")`
   (16 x 16). Compare its Fig. 10 column and its decline rates with the default layer.
4. Integrated Gradients with `n_steps=32`: how close do the maps' sums come to
   `score(x) - score(black image)` (completeness), and does its decline rate in way (i) move?
5. (Open) The CCM has decline rate 0 in way (i) by construction. Read its randomisation result
   in section 6: is it a faithful explanation? Design a measure on which a map that simply
   copies the image would fail.
""")

write("notebooks/06_methods_compared.ipynb")
