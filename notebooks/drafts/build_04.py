"""Builds notebooks/04_cav_contribution_ratios.ipynb (cells only; execute separately).

    .venv/bin/python notebooks/drafts/build_04.py      # from the repository root
"""
from _builder import code, colab_cell, md, write


md(r"""
# 04 · CAV: contribution ratios at any layer

**Paper.** Yasuki Kakishita, Hideharu Hattori (Hitachi R&D), *Classification Reasons
Visualization of Deep Neural Network using Model Inverse Analysis* (Deep Neural Network
のモデル逆解析による識別根拠可視化技術), seed 003 of the course's paper collection. Method:
**Contribution Analysis Visualization (CAV)**.

Grad-CAM explains a class with the feature maps of the *last*
convolutional stage, and after five poolings those maps are coarse: 7 x 7 for VGG-16 at
224 x 224 pixels, 1 x 1 for a VGG-style network at CIFAR's 32 x 32. CAV asks a simpler question
at every layer: *which share of the class score comes from this unit?* It answers it layer by
layer, walking back from the score with one small rule per kind of layer, so it works at any
depth, at that layer's resolution, and with negative shares for evidence *against* the class.

### What you'll learn
1. The contribution ratio by hand on the paper's toy networks (one and two Affine layers,
   Eq. 1-6), and the rules for convolution, max pooling and activations (Eq. 7-9), each
   checked against the course's library `xai_helpers.cav`.
2. Where the paper's rule and the gradient part ways: tanh and sigmoid.
3. CAV on VGG-16 at the paper's five points (1)-(5) beside Grad-CAM (Fig. 6 and 7), for a
   bundled photo, for CIFAR-10 images, or for your own upload.
4. Feature invalidation (section 5, Fig. 8, Table 1): zero the features where the ratios say
   the evidence is, and watch the scores and the top-10 change.
""")

colab_cell()

code("""
import io
import math
import time
import warnings
from collections import OrderedDict
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn
from xai_helpers import cav, cav_rules, config, data, hooks, models, train, viz, widgets
from xai_helpers import cav_analysis as ca

viz.setup()
config.set_seed(0)
print(config.mode_banner())
START = time.perf_counter()
D = torch.float64  # the toy examples in double precision: the checks compare to 1e-12
""")

md(r"""
## 1. One Affine layer (the paper's Fig. 1, Eq. 1-3)

Four inputs and one output $p$, no activation. The fourth input is always $x_4 = 1$: its weight
$w_4$ is the bias. Each input adds $\alpha_i = x_i w_i$ to the score (Eq. 1), the score is their
sum (Eq. 2), and the **contribution ratio** of input $x_i$ is its share of the score (Eq. 3):

$$\alpha_i = x_i w_i, \qquad p = \sum_i \alpha_i, \qquad \beta^p_{x_i} = \alpha_i / p .$$

The ratios add up to 1. A negative ratio marks an input that *suppresses* the score: a low score
can come from missing evidence or from evidence against the class, and the ratios show both.
""")

code("""
x = torch.tensor([0.5, -1.0, 2.0, 1.0], dtype=D)  # x_4 = 1.0: the constant input
w = torch.tensor([1.2, 0.4, 0.3, 0.5], dtype=D)   # w_4: the bias
alpha = x * w       # Eq. 1
p = alpha.sum()     # Eq. 2
beta = alpha / p    # Eq. 3
for i in range(4):
    print(f"x_{i + 1} = {x[i]:+.1f}  w_{i + 1} = {w[i]:+.1f}  alpha_{i + 1} = {alpha[i]:+.2f}  "
          f"beta_{i + 1} = {beta[i]:+.4f}")
print(f"p = {p:.2f}, sum of the ratios = {beta.sum():.4f}")
""")

md(r"""
The library does the same on an `nn.Linear(3, 1)`: the ratios of the three real inputs, and the
bias share (the ratio of the constant input $x_4$) separately. `cav.contribution_ratio` takes
images N x C x H x W, so the three inputs come as a 1 x 1 x 1 x 3 "image", flattened first.
""")

code("""
fig1 = nn.Sequential(OrderedDict(flatten=nn.Flatten(), fc=nn.Linear(3, 1))).double()
with torch.no_grad():
    fig1.fc.weight.copy_(w[:3].view(1, 3))
    fig1.fc.bias.copy_(w[3:])
result = cav.contribution_ratio(fig1, x[:3].view(1, 1, 1, 3), target=0, layers=["input"])
print("library: ratios", [round(v, 4) for v in result.ratios["input"].flatten().tolist()],
      "| bias share", round(result.biases["fc"].item(), 4), "| total", result.total("input").item())
assert torch.allclose(result.ratios["input"].flatten(), beta[:3], rtol=0, atol=1e-12)
assert torch.allclose(result.biases["fc"], beta[3:], rtol=0, atol=1e-12)
""")

md(r"""
## 2. Two Affine layers: chaining the ratios (Fig. 2, Eq. 4-6)

Layer 0 maps the inputs $x_i$ to $y_j$, layer 1 maps the $y_j$ to the score $p$. Layer 1 is
the one-layer case, so the share of $p$ that comes from $y_j$ is $\beta^p_{y_j}$ (Eq. 5);
layer 0 is the same picture with several outputs, so the share of $y_j$ that comes from $x_i$
is $\beta^{y_j}_{x_i}$ (Eq. 4). The share of $p$ that comes from $x_i$ runs through every
$y_j$ (Eq. 6):

$$\beta^{y_j}_{x_i} = \frac{x_i w^0_{ji}}{y_j}, \qquad
  \beta^p_{y_j} = \frac{y_j w^1_j}{p}, \qquad
  \beta^p_{x_i} = \sum_j \beta^p_{y_j}\, \beta^{y_j}_{x_i}.$$

Repeat this step and the ratios walk back from the score to any layer.
""")

code("""
W0 = torch.tensor([[1.0, -0.5, 0.2], [0.3, 0.8, -1.0]], dtype=D)
b0 = torch.tensor([0.1, 0.4], dtype=D)
W1 = torch.tensor([1.5, -0.7], dtype=D)
b1 = torch.tensor(0.2, dtype=D)
x = torch.tensor([0.5, -1.0, 2.0], dtype=D)
y = W0 @ x + b0                          # layer 0
p = W1 @ y + b1                          # layer 1: the score
beta_y = y * W1 / p                      # Eq. 5: share of p from y_j
beta_xy = x[None, :] * W0 / y[:, None]   # Eq. 4: row j = shares of y_j from x_1..x_3
beta_x = beta_y @ beta_xy                # Eq. 6: sum over j
bias0 = (beta_y * b0 / y).sum()          # what layer 0's constant input takes, via every y_j
print(f"y = {y.tolist()}, p = {p:.3f}")
print("Eq. 5  beta^p_y  =", [round(v, 4) for v in beta_y.tolist()], f"(bias of layer 1: {b1 / p:.4f})")
print("Eq. 6  beta^p_x  =", [round(v, 4) for v in beta_x.tolist()], f"(bias of layer 0: {bias0:.4f})")
print(f"everything adds up to {beta_x.sum() + bias0 + b1 / p:.6f}")
""")

code("""
fig2 = nn.Sequential(OrderedDict(flatten=nn.Flatten(), layer0=nn.Linear(3, 2), layer1=nn.Linear(2, 1))).double()
with torch.no_grad():
    fig2.layer0.weight.copy_(W0); fig2.layer0.bias.copy_(b0)
    fig2.layer1.weight.copy_(W1[None]); fig2.layer1.bias.copy_(b1)
for method in cav.METHODS:
    r = cav.contribution_ratio(fig2, x.view(1, 1, 1, 3), 0, ["input", "layer0"], method=method)
    print(f"{method:>9}: beta^p_x = {[round(v, 4) for v in r.ratios['input'].flatten().tolist()]}, "
          f"beta^p_y = {[round(v, 4) for v in r.ratios['layer0'].flatten().tolist()]}, "
          f"bias shares {({k: round(v.item(), 4) for k, v in r.biases.items()})}")
    assert torch.allclose(r.ratios["input"].flatten(), beta_x, atol=1e-12)
    assert torch.allclose(r.ratios["layer0"].flatten(), beta_y, atol=1e-12)
    assert torch.allclose(r.biases["layer0"], bias0[None], atol=1e-12)
""")

md(r"""
**What to notice.** `method="reference"` is the paper's walk, layer by layer; `method="fast"`
gets the same numbers from one backward pass, $\beta = x \cdot \partial p / \partial x \,/\, p$
(section 3 shows when the two differ). The bias of each layer takes its share too, so the
ratios of a layer plus the bias shares of the layers after it add up to exactly 1
(`result.total(layer)`).

## 3. Convolution, max pooling, activation (Eq. 7-9)

**Convolution (Eq. 9).** Each output $y_j$ is a fully connected unit over its receptive field,
so its share from input $x_i$ is $x_i w_{ji} / y_j$, and Eq. 6 collects the shares over all
outputs whose field contains $x_i$. By hand, with two loops over the outputs, on a 3 x 3 input
with a 2 x 2 filter:
""")

code("""
def conv_by_hand(x, w, y, R):
    \"\"\"Input ratios of a one-channel convolution (no padding, stride 1): Eq. 9, then Eq. 6.\"\"\"
    k = w.shape[-1]
    R_in = torch.zeros_like(x)
    for r in range(y.shape[0]):
        for c in range(y.shape[1]):
            beta = x[r:r + k, c:c + k] * w / y[r, c]     # Eq. 9: shares of y_rc from its field
            R_in[r:r + k, c:c + k] += R[r, c] * beta    # Eq. 6: times y_rc's own ratio
    return R_in

conv = nn.Conv2d(1, 1, 2).double()
with torch.no_grad():
    conv.weight.copy_(torch.tensor([[[[0.5, -1.0], [0.25, 1.0]]]]))
    conv.bias.fill_(0.1)
x = torch.tensor([[1.0, 2.0, 0.5], [0.0, 1.5, 3.0], [2.0, 0.5, 1.0]], dtype=D)
y = conv(x[None, None])[0, 0].detach()
R = torch.tensor([[0.4, 0.1], [-0.2, 0.5]], dtype=D)  # the ratios of y in some score
by_hand = conv_by_hand(x, conv.weight[0, 0].detach(), y, R)
library, bias_share = cav_rules.conv_rule(conv, x[None, None], y[None, None], R[None, None])
print("y =", y.tolist())
print("input ratios by hand:\\n", by_hand.numpy().round(4))
print(f"bias share: {(R * 0.1 / y).sum():.4f} by hand, {bias_share.item():.4f} library")
assert torch.allclose(library[0, 0], by_hand, atol=1e-12)
assert torch.allclose(bias_share, (R * 0.1 / y).sum()[None], atol=1e-12)
assert torch.isclose(by_hand.sum() + bias_share[0], R.sum(), atol=1e-12)  # nothing lost
""")

md(r"""
**Max pooling (Eq. 7-8).** Only the largest input of a window makes the output, so it gets the
output's whole ratio (1.0 times it) and the others get 0. **Activation (Eq. 7).** ReLU, tanh
or sigmoid map each input to its own output, so the ratio passes through unchanged.
""")

code("""
def pool_by_hand(x, R, k=2):
    \"\"\"Input ratios of a k x k max pooling: each output's ratio to the arg-max of its window.\"\"\"
    R_in = torch.zeros_like(x)
    for r in range(R.shape[0]):
        for c in range(R.shape[1]):
            i = int(x[k * r:k * r + k, k * c:k * c + k].argmax())
            R_in[k * r + i // k, k * c + i % k] += R[r, c]
    return R_in

x = torch.tensor([[1.0, 3.0, 0.5, 0.2], [2.0, 0.1, 0.4, 0.3], [0.7, 0.6, 2.5, 1.0], [0.9, 0.8, 0.0, 1.1]], dtype=D)
pool = nn.MaxPool2d(2)
R = torch.tensor([[0.6, -0.1], [0.3, 0.2]], dtype=D)
by_hand = pool_by_hand(x, R)
library, _ = cav_rules.max_pool_rule(pool, x[None, None], pool(x[None, None]), R[None, None])
print("input ratios by hand:\\n", by_hand.numpy())
assert torch.equal(library[0, 0], by_hand)
relu = nn.ReLU()
same, _ = cav_rules.activation_rule(relu, x[None, None], relu(x[None, None]), by_hand[None, None])
assert torch.equal(same[0, 0], by_hand)  # Eq. 7: unchanged
""")

md(r"""
**A whole network.** Convolution, ReLU, max pooling and an Affine layer to two classes, on a
5 x 5 input: by hand, step by step from the score back to the pixels, and by the library.
""")

code("""
torch.manual_seed(0)
tiny = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 1, 2), relu=nn.ReLU(), pool=nn.MaxPool2d(2),
                                 flatten=nn.Flatten(), fc=nn.Linear(4, 2))).double().eval()
with torch.no_grad():
    tiny.conv.weight.copy_(conv.weight)  # the filter of the convolution example, bias 0.1
    tiny.conv.bias.fill_(0.1)
x = torch.rand(5, 5, dtype=D)
with torch.no_grad():
    u = tiny.conv(x[None, None])[0, 0]          # 4 x 4
    m = tiny.pool(tiny.relu(u)[None, None])[0, 0]  # 2 x 2
    s = tiny.fc(m.flatten())
cls = int(s.argmax())
R_m = (m.flatten() * tiny.fc.weight[cls].detach() / s[cls]).view(2, 2)  # Eq. 3 / 5
R_a = pool_by_hand(torch.relu(u), R_m)                                 # Eq. 7-8
R_u = R_a                                                               # Eq. 7 (ReLU)
R_x = conv_by_hand(x, tiny.conv.weight[0, 0].detach(), u, R_u)         # Eq. 9 + 6
for method in cav.METHODS:
    r = cav.explain(tiny, x[None, None], cls, ["input", "pool"], method=method)
    assert torch.allclose(r["pool"][0, 0], R_m, atol=1e-12)
    assert torch.allclose(r["input"][0, 0], R_x, atol=1e-12)
print(f"class {cls}, score {s[cls]:.4f}; pixel ratios by hand (= library, both methods):")
print(R_x.numpy().round(3))
print(f"sum {R_x.sum():.4f}; the rest of the score is taken by the biases")
assert R_x.abs().sum() > 0.1  # a live example: some evidence reaches the pixels
""")

md(r"""
### Where the paper's rule and the gradient part ways: tanh and sigmoid

`method="fast"` computes $x \cdot \partial p/\partial x \,/\, p$. Through a ReLU that is the
paper's walk exactly, because $\mathrm{ReLU}(u) = u \cdot \mathrm{ReLU}'(u)$. For tanh and sigmoid
it is not: Eq. 7 hands the activation's whole ratio to its input ("all of $\tanh(u)$ comes from
$u$"), while the gradient asks how much the score would move if $u$ moved a little. The smallest
example: one input, one hidden unit, $p = 2\,f(x)$ with $u = 1 \cdot x$ and no biases. The
paper's walk gives $x$ the ratio 1 (the whole score is made from $x$); the gradient gives
$u f'(u)/f(u)$.
""")

code("""
def one_unit(act):
    net = nn.Sequential(OrderedDict(flatten=nn.Flatten(), hidden=nn.Linear(1, 1, bias=False), act=act,
                                    out=nn.Linear(1, 1, bias=False))).double()
    with torch.no_grad():
        net.hidden.weight.fill_(1.0)
        net.out.weight.fill_(2.0)
    return net

nets = {"tanh": one_unit(nn.Tanh()), "sigmoid": one_unit(nn.Sigmoid())}
closed = {"tanh": lambda u: u * (1 - math.tanh(u) ** 2) / math.tanh(u),
          "sigmoid": lambda u: u * (1 - 1 / (1 + math.exp(-u)))}
print(f"{'u':>5} | {'tanh: paper':>12}{'gradient':>10} | {'sigmoid: paper':>15}{'gradient':>10}")
for u in (0.1, 0.5, 1.0, 2.0, 3.0):
    row = f"{u:>5} |"
    for name, net in nets.items():
        xu = torch.full((1, 1, 1, 1), u, dtype=D)
        paper = cav.explain(net, xu, 0, ["input"], method="reference")["input"].item()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            grad = cav.explain(net, xu, 0, ["input"], method="fast")["input"].item()
        assert abs(paper - 1) < 1e-12 and abs(grad - closed[name](u)) < 1e-12
        row += f"{paper:>12.3f}{grad:>10.3f} |" if name == "tanh" else f"{paper:>15.3f}{grad:>10.3f}"
    print(row)
print("the library warns:", str(caught[0].message)[:150], "...")
""")

md(r"""
**What to notice.** The two answers agree only where $f(u) \approx u f'(u)$, near $u = 0$ for
tanh. As tanh saturates the gradient says "x hardly matters" although the score is made of
nothing else, and the gradient ratios no longer add up to 1. With sigmoid the gradient ratio is
small even for small $u$: there $\sigma(u) \approx 0.5 + u/4$, and the 0.5 does not depend on
$u$ at all, while the paper's rule still hands all of $\sigma(u)$ to $u$. The paper's
rule keeps the *accounting* (shares that add up); the gradient keeps the *sensitivity*. For the
piecewise-linear networks below (convolution, ReLU, max pooling, Affine) the two are the same
numbers, which the notebook checks.

## 4. The model: VGG-16, or a VGG-style stand-in

The paper explains **VGG-16** trained on ImageNet (1000 classes, 224 x 224 images). Its weights
come from torchvision (`IMAGENET1K_V1`, 528 MB): from a local copy `data/vgg16-397923af.pth`,
torchvision's cache, or a download. Where none of these works (offline, as in the course's
tests), the notebook says so and runs the same cells on the course's stand-in `vgg_cifar10`, a
VGG-style network trained on CIFAR-10 with the same module names and the same five max-pool
stages. The paper's points (1)-(5) are the outputs of those five stages, (1) the deepest.
""")

code("""
RETRAIN = False  # True: train the stand-in here (quick mode: a few steps on the samples)
vgg = ca.load_vgg16_imagenet()
IMAGENET = vgg is not None
if IMAGENET:
    model, classes, SIZE = vgg, ca.IMAGENET_CLASSES, 224
else:
    model = train.load_or_train("vgg_cifar10", retrain=RETRAIN)
    classes, SIZE = data.DATASETS["cifar10"].classes, 32
    print("=> NO ImageNet weights: this run uses the stand-in vgg_cifar10 (CIFAR-10, 10 classes, "
          "32 x 32 images), not the paper's VGG-16.")
POINTS = ca.pool_points(model)  # (1) deepest ... (5)
with torch.no_grad(), hooks.capture(model, POINTS) as store:
    model(torch.rand(1, 3, SIZE, SIZE))
SHAPES = {p: tuple(store[p]["act"].shape[1:]) for p in POINTS}
LABELS = {p: f"({i}) {p} {SHAPES[p][1]}x{SHAPES[p][2]}" for i, p in enumerate(POINTS, 1)}
print(f"{models.count_parameters(model):,} parameters, input {SIZE} x {SIZE}, {len(classes)} classes")
for p in POINTS:
    c, h, w = SHAPES[p]
    print(f"  point {LABELS[p]:<24} {c:>4} channels, one cell = {SIZE // h} x {SIZE // w} pixels")
""")

code("""
if not IMAGENET:
    cifar = data.load("cifar10", "test", n=config.pick(200, None))
    meta = models.read_meta("vgg_cifar10")
    accuracy = train.evaluate(model, cifar)
    print(f"vgg_cifar10: {100 * accuracy:.2f}% on {cifar.describe()} "
          f"(its JSON: {100 * meta['test_accuracy']:.2f}% on {meta['test_size']:,} images)")
    if cifar.full and meta["test_size"] == len(cifar):  # full mode: the JSON says what we measure
        assert abs(accuracy - meta["test_accuracy"]) < 1e-3
""")

md(r"""
## 5. Images and the top-5 (the paper's Fig. 5)

The paper's photo (a dog above a cat, resized to 224 x 224) is not ours to ship. We use a photo
that every matplotlib installation carries: the portrait of Grace Hopper, its central square
resized to the model's input size. On the stand-in, CIFAR-10 test images join it (the portrait
at 32 x 32 pixels, sorted into CIFAR's ten classes, is a curiosity, not a test). Section 8 takes
your own image. Scores are the **pre-softmax** outputs, as in the paper.
""")

code("""
IMAGES = {"photo (Grace Hopper)": ca.sample_photo(SIZE)}
if not IMAGENET:
    for i in range(8):
        IMAGES[f"CIFAR #{i} ({cifar.classes[cifar.labels[i]]})"] = cifar.images[i:i + 1]

def scores_of(x):
    with torch.no_grad():
        return model(x)[0]

def top5_lines(s):
    prob = s.softmax(0)
    return [f"{rank}. {c} {classes[c]} ({v:.2f}, {100 * prob[c]:.1f}%)" for rank, c, v in ca.top_rows(s, 5)]

right = [n for n in list(IMAGES)[1:] if n.endswith(f"({classes[int(scores_of(IMAGES[n]).argmax())]})")]
MAIN = "photo (Grace Hopper)" if IMAGENET else (right or list(IMAGES)[1:])[0]
fig = viz.image_grid(torch.cat(list(IMAGES.values())), list(IMAGES), ncols=5, size=1.9,
                     title=f"The images of this notebook at the model's input size ({SIZE} x {SIZE})")
plt.show()
for name in dict.fromkeys(["photo (Grace Hopper)", MAIN]):
    print(f"{name}: top-5 (pre-softmax score, softmax probability)")
    print("   " + "\\n   ".join(top5_lines(scores_of(IMAGES[name]))))
""")

md(r"""
## 6. CAV at the points (1)-(5) beside Grad-CAM (the paper's Fig. 6 and 7)

For a class, `cav.explain` gives the ratio of every unit at the five points in one backward
pass; summed over channels (section 3.3) each point gives one map at its own resolution. Top
row: the positive ratios as a heat map (Fig. 6); bottom row: positive red and negative blue over
the grey image (Fig. 7), and, on the left, Grad-CAM (captum's `LayerGradCam`) at point (1), the
only place it can look. Each map is enlarged to the image by **nearest neighbour**, for display
only: one coloured block per cell, nothing smoothed or invented.
""")

code("""
x = IMAGES[MAIN]
S = scores_of(x)
TOP = [c for _, c, _ in ca.top_rows(S, 5)]

def figure_6_7(x, cls, name):
    maps = ca.point_maps(model, x, cls, POINTS)
    cam = ca.grad_cam(model, x, POINTS[0], cls)
    return viz.maps_over_image_rows(
        x[0], [maps[p] for p in POINTS], [LABELS[p].split(" ")[0] + f" {SHAPES[p][1]}x{SHAPES[p][2]}" for p in POINTS],
        first=cam, first_title=f"Grad-CAM at (1) {cam.shape[0]}x{cam.shape[1]}", first_label="Grad-CAM (ReLU)", size=1.9,
        title=f"{name}: class {cls} '{classes[cls]}' (rank {ca.rank_of(scores_of(x), cls)}), CAV at (1)-(5); "
              f"maps enlarged by nearest neighbour (display only)")

fig = figure_6_7(x, TOP[0], MAIN)
plt.show()
""")

md(r"""
The checks behind the picture: at every point the ratios plus the bias shares of the layers
after it add up to 1 (conservation), and the one-backward-pass numbers equal the paper's
layer-by-layer walk (the network is piecewise linear: convolution, ReLU, max pooling, Affine).
""")

code("""
result = cav.contribution_ratio(model, x, TOP[0], POINTS)
walk = cav.explain(model, x, TOP[0], POINTS, method="reference")
print(f"class '{classes[TOP[0]]}', score p = {result.scores.item():.3f}")
print(f"{'point':<26}{'sum of ratios':>14}{'biases after':>14}{'total':>10}{'fast vs walk':>14}")
for p in POINTS:
    gap = ((result.ratios[p] - walk[p]).abs().max() / walk[p].abs().max()).item()
    total = result.total(p).item()
    print(f"{LABELS[p]:<26}{result.ratios[p].sum().item():>14.4f}{result.bias_after(p).item():>14.4f}"
          f"{total:>10.5f}{gap:>14.1e}")
    assert abs(total - 1) < 1e-3 and gap < 1e-3
if not IMAGENET:
    assert SHAPES[POINTS[0]][1:] == (1, 1)
    cam = ca.grad_cam(model, x, POINTS[0], TOP[0])
    print(f"\\nstand-in at {SIZE} x {SIZE}: point (1) is {cam.shape[0]} x {cam.shape[1]}, so Grad-CAM is the single "
          f"number {cam.item():.4f}: nothing to localise. CAV still maps (2)-(5) at "
          + ", ".join(f"{SHAPES[p][1]}x{SHAPES[p][2]}" for p in POINTS[1:]) + ".")
""")

md(r"""
**What to notice.** Grad-CAM and CAV at (1) work at the same resolution: the paper found them
showing the same tendency there. CAV then continues to (2)-(5) at 2, 4, 8 and 16 times the
resolution. **On the stand-in** (CIFAR-10 at 32 x 32) point (1) is a single cell: Grad-CAM's
"map" is one number, a uniform panel that cannot point anywhere, while CAV still localises at
(2)-(5). This is the paper's argument in its sharpest form (section 2: "depending on the
network, the last CNN layer can be 1 x 1"). Where the positive and negative parts sit for this
model and image is for you to read off the panels; at each point the colour bar is that
point's own scale, because a map with more cells spreads its total over more of them.

The paper compared two classes of one image ('boxer' and 'tiger cat'). The second class of our
image:
""")

code("""
fig = figure_6_7(x, TOP[1], MAIN)
plt.show()
first, second = (ca.point_maps(model, x, c, POINTS) for c in TOP[:2])
print(f"correlation of the signed maps of '{classes[TOP[0]]}' and '{classes[TOP[1]]}':")
for p in POINTS[1:]:  # (1) may be a single cell
    r = torch.corrcoef(torch.stack([first[p].flatten(), second[p].flatten()]))[0, 1].item()
    print(f"  {LABELS[p]:<26}{r:+.2f}")
""")

md(r"""
**What to look for.** A correlation near +1 means the two classes draw on the same cells; near
$-1$, what speaks for one class speaks against the other; near 0, they look at different things.
The paper's two classes sat on two different animals. Do the two top classes of this image
share their evidence, or split it, and does that change from (2) to (5)?
""")

md(r"""
## 7. Explore: any image, any point, any class

Point (1)-(5); the class by its rank in the image's top-5, or any class with the second slider
(leave it at "top-5 rank" to use the first). Left to right: the image with its top-5, Grad-CAM
at (1), CAV's positive ratios at the point (Fig. 6), and the signed ratios (Fig. 7).
""")

code("""
POINT_OPTIONS = [(LABELS[p], i) for i, p in enumerate(POINTS)]
CLASS_OPTIONS = [("top-5 rank", -1)] + [(f"{i}: {name}", i) for i, name in enumerate(classes)]

def render_image(x, name, point, rank, cls):
    s = scores_of(x)
    c = ca.top_rows(s, 5)[rank - 1][1] if cls < 0 else cls
    p = POINTS[point]
    ratio = ca.point_maps(model, x, c, [p])[p]
    cam = ca.grad_cam(model, x, POINTS[0], c)
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.6))
    viz.show_image(axes[0], x[0], name[:34])
    axes[0].set_xlabel("\\n".join(top5_lines(s)), fontsize=7, loc="left")
    viz.heatmap_over_image(axes[1], x[0], cam, f"Grad-CAM at (1) {cam.shape[0]}x{cam.shape[1]}",
                           signed=False, cbar_label="Grad-CAM (ReLU)")
    viz.heatmap_over_image(axes[2], x[0], ratio.clamp(min=0), f"CAV {LABELS[p]}: positive",
                           signed=False, cbar_label="contribution ratio")
    viz.heatmap_over_image(axes[3], x[0], ratio, f"CAV {LABELS[p]}: red +, blue -",
                           cbar_label="contribution ratio")
    fig.suptitle(f"class {c} '{classes[c]}' (rank {ca.rank_of(s, c)}, score {s[c]:.2f}); "
                 f"maps enlarged by nearest neighbour")
    fig.tight_layout()
    return fig

def render_explore(image: str, point: int, rank: int, cls: int):
    return render_image(IMAGES[image], image, point, rank, cls)

for args in [(MAIN, 0, 1, -1), (MAIN, len(POINTS) - 1, 2, -1), (list(IMAGES)[0], 2, 1, 3)]:
    plt.close(render_explore(*args))  # what the sliders draw, for a few values
""")

code("""
widgets.interact_view(render_explore, image=widgets.dropdown(list(IMAGES), value=MAIN, description="image"),
                      point=widgets.choice_slider(POINT_OPTIONS, value=1, description="point"),
                      rank=widgets.choice_slider([(str(r), r) for r in range(1, 6)], description="top-5 rank"),
                      cls=widgets.choice_slider(CLASS_OPTIONS, description="any class"))
""", tags=["nbval-ignore-output"])

md(r"""
## 8. Your own image

Upload a photo (JPEG or PNG): its central square is resized to the model's input size
(224 x 224 for VGG-16, 32 x 32 for the stand-in) and explained like the others. Until you upload
one, the view shows the bundled photo.
""")

code("""
def render_upload(upload, point: int, rank: int):
    content = widgets.uploaded_file(upload)
    if content is None:  # a small placeholder until something is uploaded
        fig, ax = plt.subplots(figsize=(6, 0.8))
        ax.text(0.5, 0.5, "No image uploaded yet: click the upload button.", ha="center", va="center")
        ax.axis("off")
        ax.set_title("Your image")
        return fig
    return render_image(ca.load_image(content, SIZE), f"your image, {SIZE} x {SIZE}", point, rank, -1)

plt.close(render_upload((), 0, 1))  # before any upload
buffer = io.BytesIO()  # what an upload brings: the file's bytes (here the bundled photo as a PNG)
plt.imsave(buffer, IMAGES["photo (Grace Hopper)"][0].permute(1, 2, 0).numpy(), format="png")
upload = ({"name": "photo.png", "type": "image/png", "content": memoryview(buffer.getvalue())},)
plt.close(render_upload(upload, 1, 1))
""")

code("""
widgets.interact_view(render_upload, upload=widgets.upload_button(),
                      point=widgets.choice_slider(POINT_OPTIONS, value=1, description="point"),
                      rank=widgets.choice_slider([(str(r), r) for r in range(1, 6)], description="top-5 rank"))
""", tags=["nbval-ignore-output"])

md(r"""
## 9. Feature invalidation (section 5, Fig. 8, Table 1)

Is the evidence that CAV shows really used? The paper tested it by *switching features off*:
at the point it visualised, it set the features in a masked region to zero and read the
pre-softmax score. Two masks from the ratio map (Fig. 8): **(b) the high-positive spots** and
**(a) the object minus those spots**. Masking the dog without its spots *raised* 'tiger cat'
(the mask removed evidence against it), masking only the spots *lowered* it and pushed it from
4th to 10th place (Table 1).

Our image has no segmentation, so the "object" is the whole map (CIFAR objects and the portrait
fill the frame; `ca.feature_masks(..., region=...)` takes a region of your own). A spot is a
cell whose ratio is at least `THRESHOLD` times the largest one. The zeroing is a forward hook on
the point's layer inside a `with` block (`ca.invalidate`), removed when the block ends. Since
the ratios are shares of the score, they also *predict* the new score if nothing above the
point changed its switching (ReLU on/off, max-pool winners): $p \,(1 - \sum_{\text{mask}} \beta)$.
""")

code("""
INV_POINT, INV_RANK, THRESHOLD = 3, 1, 0.3  # point (4) as in the paper's Fig. 8; top-1 class
point, c = POINTS[INV_POINT], TOP[INV_RANK - 1]
ratio_map = ca.point_maps(model, x, c, [point])[point]
masks = {mode: ca.feature_masks(ratio_map, THRESHOLD, mode) for mode in ca.MASK_MODES}
before, after = scores_of(x), {}
print(f"class '{classes[c]}' at point {LABELS[point]}, threshold {THRESHOLD}: score {before[c]:.3f}, rank {ca.rank_of(before, c)}")
for mode, mask in masks.items():
    with ca.invalidate(model, point, mask):
        after[mode] = scores_of(x)
    predicted = before[c] * (1 - ratio_map[mask].sum())
    print(f"  zeroed {mode:<19} {int(mask.sum()):>5} of {mask.numel()} cells: score {after[mode][c]:.3f} "
          f"(rank {ca.rank_of(after[mode], c)}); CAV's prediction with switches kept: {predicted:.3f}")
    moved, foretold = after[mode][c] - before[c], predicted - before[c]
    print(f"    measured change {moved:+.3f}, predicted {foretold:+.3f}: "
          f"{'same direction' if moved * foretold > 0 else 'OPPOSITE direction'}, "
          f"|error| {abs(after[mode][c] - predicted):.3f} = {100 * abs(after[mode][c] - predicted) / abs(before[c]):.0f}% of the score")
with ca.invalidate(model, point, torch.zeros_like(ratio_map, dtype=torch.bool)):
    assert torch.allclose(scores_of(x), before, rtol=1e-5, atol=1e-5)  # an empty mask changes nothing (up to rounding)
assert not any(m._forward_hooks for m in model.modules())  # every hook removed
assert not (masks["spots"] & masks["object minus spots"]).any()
""")

code("""
def masked(x, mask):
    \"\"\"The image with the masked cells black (the paper's Fig. 8), mask enlarged by nearest neighbour.\"\"\"
    return x[0] * (1 - F.interpolate(mask[None, None].float(), size=x.shape[-2:], mode="nearest")[0])

fig, axes = plt.subplots(1, 3, figsize=(10, 3.3))
viz.heatmap_over_image(axes[0], x[0], ratio_map, f"ratios at {LABELS[point]}", cbar_label="contribution ratio")
viz.show_image(axes[1], masked(x, masks["object minus spots"]), "(a) object minus spots: zeroed")
viz.show_image(axes[2], masked(x, masks["spots"]), "(b) high-positive spots: zeroed")
fig.suptitle(f"Fig. 8: where the features of '{classes[c]}' are zeroed (black), threshold {THRESHOLD}; "
             f"cells enlarged by nearest neighbour")
fig.tight_layout()
plt.show()
print("Table 1: the top-10 before and after zeroing (b), the spots")
print(ca.top_table(before, after["spots"], classes, k=10, track=TOP))
""")

md(r"""
**What to notice.** Compare the three scores of the class: before, after (a) and after (b), and
each with CAV's prediction. Where the measured and the predicted score are close, the layers
above the point kept their switching and the ratios are exact shares; where they differ,
zeroing the features changed which ReLUs fire and which pooling inputs win, and the network
re-routed its evidence. Which direction each mask moves the score, and how far, depends on the
model and the image: check whether it follows the sign of the ratios in the mask, as it did in
the paper.

Try other points, classes and thresholds (threshold 0: every cell with a positive ratio; 1: the
single largest cell):
""")

code("""
def render_invalidate(point: int, rank: int, threshold: float, mode: str):
    p, cls = POINTS[point], TOP[rank - 1]
    rmap = ca.point_maps(model, x, cls, [p])[p]
    mask = ca.feature_masks(rmap, threshold, mode)
    with ca.invalidate(model, p, mask):
        new = scores_of(x)
    fig = plt.figure(figsize=(12, 5.8))
    grid = fig.add_gridspec(2, 3, height_ratios=[1.2, 1])
    ax = [fig.add_subplot(grid[0, i]) for i in range(3)] + [fig.add_subplot(grid[1, :])]
    viz.heatmap_over_image(ax[0], x[0], rmap, f"ratios at {LABELS[p]}", cbar_label="contribution ratio")
    viz.show_image(ax[1], masked(x, mask), f"{mode}: {int(mask.sum())} of {mask.numel()} cells zeroed")
    shown = [c for _, c, _ in ca.top_rows(S, min(10, len(classes)))]
    rows = torch.arange(len(shown))
    ax[2].barh(rows - 0.2, S[shown], height=0.4, label="before")
    ax[2].barh(rows + 0.2, new[shown], height=0.4, label="after")
    ax[2].set_yticks(rows, [classes[c][:18] for c in shown], fontsize=7)
    ax[2].invert_yaxis()
    ax[2].set(xlabel="pre-softmax score", title="top-10 before: scores before / after")
    ax[2].legend(fontsize=7)
    ax[3].text(0, 1, ca.top_table(S, new, classes, k=min(10, len(classes)), track=[cls]),
               family="monospace", fontsize=7, va="top")
    ax[3].axis("off")
    fig.suptitle(f"'{classes[cls]}': {S[cls]:.2f} -> {new[cls]:.2f} (rank {ca.rank_of(S, cls)} -> "
                 f"{ca.rank_of(new, cls)}); CAV's prediction {S[cls] * (1 - rmap[mask].sum()):.2f}")
    fig.tight_layout()
    return fig

for args in [(INV_POINT, 1, 0.0, "spots"), (0, 2, 1.0, "object minus spots")]:
    plt.close(render_invalidate(*args))  # what the sliders draw, for a few values
fig = render_invalidate(INV_POINT, INV_RANK, THRESHOLD, "spots")
""")

code("""
widgets.interact_view(render_invalidate,
                      point=widgets.choice_slider(POINT_OPTIONS, value=INV_POINT, description="point"),
                      rank=widgets.choice_slider([(str(r), r) for r in range(1, 6)], description="top-5 rank"),
                      threshold=widgets.choice_slider([(f"{t:.1f}", t) for t in (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)],
                                                      value=THRESHOLD, description="threshold"),
                      mode=widgets.dropdown(ca.MASK_MODES, description="mask"))
""", tags=["nbval-ignore-output"])

md(r"""
## 10. Measured: does the evidence spread out near the input?

The paper warns that close to the input "the evidence spreads over a wide area and the overall
tendency is hard to judge", so one should look at several layers. We measure it: at each point,
the share of the positive ratio mass that lies in the 10% of cells with the largest ratios
(at least one cell; at a 1 x 1 point that is trivially 100%), and the share of negative mass,
$\sum \beta^- / \sum |\beta|$. On the stand-in over CIFAR-10 test images, each for its predicted
class; on VGG-16 over the photo's top-5 classes.
""")

code("""
if IMAGENET:
    xs, targets = x.repeat(5, 1, 1, 1), torch.tensor(TOP)
else:
    xs = cifar.images[:config.pick(16, 64)]
    targets = train.predict(model, xs).argmax(1)
ratios = cav.explain(model, xs, targets, POINTS)
spread = {}  # point -> (top-10% share, negative share), means over the explanations
print(f"{len(xs)} explanations; mean over them:")
print(f"{'point':<26}{'cells':>7}{'top 10% of cells hold':>24}{'negative share':>16}")
for p in POINTS:
    maps = cav.channel_map(ratios[p]).flatten(1)
    pos, neg = maps.clamp(min=0), (-maps).clamp(min=0)
    k = max(1, math.ceil(0.1 * maps.shape[1]))
    top_share = pos.topk(k, dim=1).values.sum(1) / pos.sum(1).clamp(min=1e-12)
    neg_share = neg.sum(1) / maps.abs().sum(1).clamp(min=1e-12)
    print(f"{LABELS[p]:<26}{maps.shape[1]:>7}{100 * top_share.mean():>23.1f}%{100 * neg_share.mean():>15.1f}%")
    spread[p] = (float(top_share.mean()), float(neg_share.mean()))
mapped = [p for p in POINTS if SHAPES[p][1] * SHAPES[p][2] > 1]  # leave out a 1 x 1 point
deep, shallow = mapped[:2], mapped[-2:]
top_deep, top_shallow = (sum(spread[p][0] for p in ps) / len(ps) for ps in (deep, shallow))
neg_deep, neg_shallow = (sum(spread[p][1] for p in ps) / len(ps) for ps in (deep, shallow))
print(f"measured: top-10% share {100 * top_deep:.1f}% at the deeper {deep} vs {100 * top_shallow:.1f}% at the "
      f"shallower {shallow} -> the positive evidence is "
      f"{'spread thinner near the input' if top_shallow < top_deep - 0.02 else 'NOT spread thinner near the input (within 2 points or more concentrated)'}; "
      f"negative share {100 * neg_deep:.1f}% vs {100 * neg_shallow:.1f}%")
""")

md(r"""
**What to look for.** If the paper's remark holds for this model, the top 10% of cells hold
less of the positive mass at the shallow points than at the deep ones: the evidence is spread
thinner (the last line says what was measured). The negative share says how much of each map
speaks *against* the class; at a single cell it can only be 0% or 100%. A map that is half
negative is hard to judge for another reason: its positive and negative cells nearly cancel, so
the picture shows many strong cells whose *net* effect is small. Which of the two makes the
shallow maps hard to read for this model?

## Summary
- A contribution ratio is a unit's share of the class score (Eq. 1-3); shares chain through
  layers (Eq. 4-6) with one rule per kind of layer: convolution as an Affine layer over the
  receptive field (Eq. 9), max pooling to the winner (Eq. 7-8), activations unchanged (Eq. 7).
  Ratios plus bias shares add up to 1.
- For piecewise-linear networks the paper's walk equals activation x gradient / score (one
  backward pass); with tanh or sigmoid the two differ, and only the walk keeps the shares.
- CAV works at every pooling stage, with negative evidence, where Grad-CAM sees only the
  deepest stage, which can be a single cell.
- Zeroing features where the ratios point changes the scores; the ratios predict that change
  as long as the network's switching above the point stays the same.

## Exercises
1. Add an `nn.Upsample(scale_factor=2)` after the first max pool of a small network and run
   `cav.explain(..., method="reference")`. Read the `NoRuleError`, register a rule with
   `cav.register_rule` (nearest upsampling is linear: which rule of `cav_rules` fits?) and check
   that `contribution_ratio(...).total(layer)` is 1 again.
2. For tanh, at which $u$ is the gradient ratio of section 3 half the paper's? Solve
   $u(1 - \tanh^2 u)/\tanh u = 0.5$ numerically.
3. In section 9, zero the same *number* of cells at random instead of the spots (use
   `torch.randperm`). How does the score change compare?
4. Upload a photo with two objects (the paper: a dog and a cat). Explain the second object's
   class at (1)-(5): does its positive evidence sit on the "wrong" object at some point?
5. Time `cav.explain` with `method="fast"` and `"reference"` on the model of section 4. Why is
   the walk slower, and what would it take to make the paper's rules work for tanh in one
   backward pass?
""")

code("""
print(f"notebook ran in {time.perf_counter() - START:.0f} s ({'VGG-16, ImageNet' if IMAGENET else 'stand-in vgg_cifar10'})")
""")

write("notebooks/04_cav_contribution_ratios.ipynb")
