"""Builds notebooks/03_generative_contribution_maps.ipynb (cells only; execute separately)."""
from _builder import code, colab_cell, md, write


md(r"""
# 03 · Generative Contribution Mappings: a classifier whose map *is* its score

**Paper.** *Intuitive visualization method for image classification tasks using CNNs*
(畳み込みニューラルネットワークを用いた画像分類タスクの直感的可視化方法), IPSJ Transactions on
Mathematical Modeling and Its Applications, Vol. 10 No. 2, July 2017 (seed 002 of the course's
paper collection). Method: **Generative Contribution Mappings (GCM)**.

CAM and Grad-CAM explain a finished classifier after the fact: they compute a coarse map,
upscale it, colour it and blend it with the image, three steps that change the picture but not
the decision. GCM turns this around. Its last step is not a fully connected layer but a
*parameter-free average*: the network paints, for every class, a map over the input image, and
the class score **is** the mean of that map. What you see is exactly what the classifier used.

### What you'll learn
1. The model: an encoder-decoder that generates one **Class Weight Map** (CWM) per class; the
   CWM times the image is the **Class Contribution Map** (CCM); its mean is the score (Eq. 1-7).
2. How well such a classifier does on CIFAR-10 at about 162,000 parameters, next to a plain CNN
   of the same size (our versions of the paper's lost Tables 3, 4 and 7).
3. How to read the maps: positive and negative parts (Fig. 7), clipping the negative part
   (Fig. 8), many examples (Fig. 9), "visual mental arithmetic".
4. What the maps show beyond the paper's pictures, *measured*: do non-target maps get cleaner
   with a negative part? Where do "truck" and "automobile" differ? Two objects in one image.
   On house-number-like digits, how much of the map falls on the centre digit (the paper's SVHN
   finding, Fig. 6)?
""")

colab_cell()

code("""
import json
import matplotlib.pyplot as plt
import torch
from xai_helpers import config, data, digits, gcm, models, train, viz, widgets
from xai_helpers import gcm_analysis as ga

viz.setup()
config.set_seed(0)
print(config.mode_banner())
RETRAIN = False  # True: train the six models here (quick mode: a few steps on the samples)
net = train.load_or_train("gcm_cifar10", retrain=RETRAIN)
net_v1 = train.load_or_train("gcm_cifar10_v1", retrain=RETRAIN)  # no skips, the CNN's recipe
net_v2 = train.load_or_train("gcm_cifar10_v2", retrain=RETRAIN)  # skips, no residual adds, no teacher
net_clip = train.load_or_train("gcm_cifar10_clip", retrain=RETRAIN)
cnn = train.load_or_train("cnn_cifar10", retrain=RETRAIN)
net_digits = train.load_or_train("gcm_digits", retrain=RETRAIN)
cifar = data.load("cifar10", "test", n=config.pick(500, None))
classes = cifar.classes
""")

md(r"""
## 1. The model (paper 2, section 3, Fig. 3 and 5)

For an input image $I \in \mathbb{R}^{R \times C \times D}$ (rows, columns, channels) and each
class $j$:

| | equation | in code |
|---|---|---|
| Eq. 1 | $M^{(j)}_{CWM} = F^{(j)}_{Decoder}(F_{Encoder}(I))$, an $R \times C$ signed map | `net.cwm(x)[:, j]` |
| Eq. 2 | $W^{(j)} = \mathrm{Tile}(M^{(j)}_{CWM})$, copied to the $D$ channels | `cwm.unsqueeze(2)` |
| Eq. 3 | $M^{(j)}_{CCM} = W^{(j)} \otimes I$, element-wise | `cwm.unsqueeze(2) * x.unsqueeze(1)` |
| Eq. 4 | $V^{(j)}_{SC} = \frac{1}{RCD}\sum M^{(j)}_{CCM}$, the class score | `ccm.mean(dim=(2, 3, 4))` |
| Eq. 5 | prediction $= \arg\max_j V^{(j)}_{SC}$ | `scores.argmax(1)` |
| Eq. 7 | $V^{(j)}_{SC} = \langle W^{(j)}, I \rangle / (RCD)$ | a network whose weights $W^{(j)}$ are generated per image |

The decoder is **shared** by all classes except its last layer (section 3.3): layers 1-10
encode, 11-14 decode for all classes, layer 15 has one 3x3 filter per class. The paper's
Table 3 with the exact layers is lost; here is ours, in the paper's notation ("3x3, c16, s1" =
3x3 filters, 16 output channels, stride 1), at about the paper's 162,000 parameters:
""")

code("""
def print_table(rows):
    print(f"{'layer':<17}{'parameters':<34}{'output':<12}{'weights':>8}")
    for r in rows:
        print(f"{r['layer']:<17}{r['parameters (notation)']:<34}{r['output']:<12}{r['n_params']:>8,}")
    print(f"{'total':<63}{sum(r['n_params'] for r in rows):>8,}")

print_table(gcm.layer_table(net))
print("skip connections (decoder layer <- encoder layer added to its output):", net.skips)
print("residual adds (layer input added to its output):", sorted(net.residual, key=lambda n: int(n[5:])))
print("mirror-averaged maps at inference:", net.mirror)
""")

md(r"""
**Three additions of ours, none with parameters.** The paper's Fig. 5 is a plain
encoder-decoder. Ours (1) adds, as in a U-Net, the encoder's 16 x 16 features (layer 5) to the
output of decoder layer 11 and its 32 x 32 features (layer 2) to that of layer 13, so the class
maps get back the fine detail that the two stride-2 stages threw away; (2) adds each layer's
input to its output where the two have the same shape (*residual adds*, as in a ResNet), which
makes the 14 layers easier to train; (3) averages, at inference, the CWM of the image and the
mirrored-back CWM of its mirror image (`mirror=True`), so flipping an image flips its maps and
keeps its scores. Additions cost no parameters, so the count stays at the paper's budget, and
none of them touches Eq. 1-7: the CWM is still one map per class, the score still the mean of
the CCM. Section 3 compares the versions: `gcm_cifar10_v1` is the paper's plain layout.
""")

md(r"""
**Why the input is not centred.** The CCM is the CWM *times the pixels*. With pixels in
$[0, 1]$ a black pixel contributes nothing and a bright one a lot, so the CCM looks like the
image lit by a spotlight that the CWM points. Centring (subtracting the mean pixel) would make
dark pixels negative: a positive weight on a dark pixel would then *lower* the score, and the
map would no longer read as "this part of the image speaks for the class". So GCM gets the raw
image, and only the plain CNN below gets the centring the paper gave it (section 4.4).

## 2. Eq. 1-7 on one image, with the checks
""")

code("""
x = cifar.images[:1]
cwm = net.cwm(x)                              # Eq. 1: N x K x R x C
W = cwm.unsqueeze(2).expand(-1, -1, 3, -1, -1)  # Eq. 2: tiled to the D = 3 channels
ccm = W * x.unsqueeze(1)                      # Eq. 3: N x K x D x R x C
scores = ccm.mean(dim=(2, 3, 4))              # Eq. 4
print("Eq. 5 prediction:", classes[scores.argmax(1).item()], "| true class:", classes[cifar.labels[0]])
print("scores:", [f"{s:+.3f}" for s in scores[0].tolist()])

# checks: the model's own scores are the CCM means; Eq. 7's inner product equals score x RCD
_, ccm_model, scores_model = net.maps(x)
print("max |model score - mean of its CCM|:", (scores_model - ccm_model.mean(dim=(2, 3, 4))).abs().max().item())
print("max |our Eq. 1-4 - model|:          ", (scores - scores_model).abs().max().item())
inner = torch.einsum("nkdrc,ndrc->nk", W.double(), x.double())
print("max |<W, I> / RCD - score|:         ", (inner / (3 * 32 * 32) - scores.double()).abs().max().item())
assert torch.allclose(scores_model, ccm_model.mean(dim=(2, 3, 4)), rtol=0, atol=1e-6)
assert torch.allclose(inner / (3 * 32 * 32), scores.double(), rtol=1e-5, atol=1e-6)
""")

md(r"""
**What to notice.** The differences are zero or at the level of float rounding (the `assert`s
check it): the
score *is* the mean of the map. `net(x)` itself is `net.maps(x)[2]`, so there is no second
code path that could disagree with the picture.

## 3. Training and accuracy (sections 4.1-4.4)

The paper's training conditions (Table 4) are lost. Ours are in the checkpoint's JSON, and
the final models are trained on all 50,000 training images. The paper chose its conditions on
a 45,000 / 5,000 split of the training set; the same recipe trained on the 45,000 and measured
on the held-out 5,000 (`python -m xai_helpers.train NAME --validation 5000`, and shorter
runs of single changes with `tools/tune_gcm.py`) is printed below. The offline CIFAR-10 test
set of this course has 9,000 JPEG-degraded images (`../shared/data`, README); we report the
accuracy on all 10,000 and on the 1,000 exact ones.

**Distillation (ours).** Besides the true labels, `gcm_cifar10` learned from a *teacher*: the
averaged predictions of six CIFAR-10 models trained before it (the plain CNN, a VGG-style
network and four earlier GCMs; `teachers` below). Its loss is
$(1 - a)\,\mathrm{CE}(\text{scores}, y) + a\,T^2\,\mathrm{KL}(\text{teacher}_T \,\|\, \text{GCM}_T)$
(Hinton et al., 2015; $a$ = `distill_weight`, $T$ = `temperature`): the soft predictions say
that this cat looks a little like a dog, which a small model learns from better than from the
label alone. It changes the training only; the model and Eq. 1-7 are the same.
""")

code("""
meta = models.read_meta("gcm_cifar10")
recipe = {k: meta.get(k) for k in ("optimizer", "lr", "schedule", "weight_decay", "batch_size", "epochs",
                                   "augment", "jpeg_p", "label_smoothing", "teachers", "distill_weight", "temperature")}
print("our Table 4:", recipe)
val_dir = config.RESULTS_DIR / "validation"
if (val_dir / "gcm_cifar10.json").exists():  # the second version's recipe (no residual adds, no teacher)
    val = json.loads((val_dir / "gcm_cifar10.json").read_text())
    print(f"validation, second version's recipe, {val['epochs']} epochs: {100 * val['validation_accuracy']:.2f}%")
if (val_dir / "gcm_tuning.json").exists():
    for run in json.loads((val_dir / "gcm_tuning.json").read_text()).values():
        print(f"validation, {run['variant']} ({run['epochs']} epochs): {100 * run['validation_accuracy']:.2f}%, "
              f"mirror-averaged {100 * run['validation_accuracy_mirror_averaged']:.2f}%")
fig, ax = plt.subplots(figsize=(6, 3))
for name in ("gcm_cifar10", "gcm_cifar10_v2", "gcm_cifar10_v1", "gcm_cifar10_clip", "cnn_cifar10"):
    m = models.read_meta(name)
    ax.plot(range(1, len(m["history_test_accuracy"]) + 1), [100 * a for a in m["history_test_accuracy"]], label=name)
ax.axhline(90.43, color="grey", ls="--", lw=1, label="paper: GCM 90.43%")
ax.set(xlabel="epoch", ylabel="test accuracy (%)", ylim=(60, 95), title="Test accuracy during training (10,000 images)")
ax.legend(); plt.show()
""")

md(r"""
**Our Table 7.** Parameters, test accuracy and inference time per image of GCM, the clipped
GCM and the plain CNN, measured here in this run, on this machine (batches of 100 on the CPU).
In quick mode the accuracy is on the 500-image sample only, not a reproduction.
""")

code("""
timing = cifar.images[:200]
print(f"{'model':<18}{'parameters':>11}{'accuracy (%)':>14}{'exact 1,000 (%)':>17}{'ms / image':>12}")
times = {}
for name, model in (("gcm_cifar10", net), ("gcm_cifar10_v2", net_v2), ("gcm_cifar10_v1", net_v1),
                    ("gcm_cifar10_clip", net_clip), ("cnn_cifar10", cnn)):
    acc = 100 * train.evaluate(model, cifar)
    exact = models.read_meta(name).get("test_accuracy_exact")
    times[name] = 1e3 * ga.seconds_per_image(model, timing)
    if cifar.full:  # full mode: the checkpoint's JSON says what we measure here
        assert abs(acc - 100 * models.read_meta(name)["test_accuracy"]) < 0.1
    print(f"{name:<18}{models.count_parameters(model):>11,}{acc:>14.2f}"
          f"{100 * exact if exact else float('nan'):>17.2f}{times[name]:>12.3f}")
print(f"on {cifar.describe()}")
print(f"one GCM view (gcm_cifar10_v2) takes x{times['gcm_cifar10_v2'] / times['cnn_cifar10']:.1f} the CNN's time per image "
      f"(the decoder works at full resolution); gcm_cifar10 averages two views: x{times['gcm_cifar10'] / times['cnn_cifar10']:.1f}")
""")

code("""
for name in ("gcm_cifar10", "gcm_cifar10_v2", "gcm_cifar10_v1", "gcm_cifar10_clip", "gcm_cifar10_clip_v2", "cnn_cifar10"):
    m = models.read_meta(name)
    if "test_accuracy_exact_ci95" not in m:  # a quick-mode checkpoint is not measured on the full test set
        print(f"{name}: quick-mode checkpoint, no full test-set measurement in its JSON")
        continue
    lo, hi = m["test_accuracy_exact_ci95"]
    print(f"{name} (from its JSON): 10,000 images {100 * m['test_accuracy']:.2f}% | 1,000 exact {100 * m['test_accuracy_exact']:.2f}% "
          f"(95% interval {100 * lo:.1f}-{100 * hi:.1f}) | the same 1,000 recompressed as JPEG-75 "
          f"{100 * m['test_accuracy_exact_recompressed']:.2f}%: JPEG costs {100 * m['jpeg_drop']:+.2f} points")
acc = {name: 100 * models.read_meta(name)["test_accuracy"] for name in ("gcm_cifar10", "gcm_cifar10_clip", "cnn_cifar10")}
print(f"clipped - signed GCM: {acc['gcm_cifar10_clip'] - acc['gcm_cifar10']:+.2f} points here, "
      f"{89.91 - 90.43:+.2f} in the paper; GCM - CNN: {acc['gcm_cifar10'] - acc['cnn_cifar10']:+.2f} points here "
      f"(the paper: 'the same level')")
""")

md(r"""
**What to notice.** The paper's claims are 90.43% for GCM and 89.91% clipped, on the original
test set; a JPEG-degraded test set is harder, and the last column shows by how much: the same
exact images, recompressed the way the 9,000 others were, lose that many points. Our recipe
replaces a share `jpeg_p` of the training images by their JPEG-recompressed copies (printed
with our Table 4 above), which narrows this gap. The CNN of the
same size is the paper's point of comparison (section 4.4; the paper: "the same level"). For a
fair comparison of the two architectures take `gcm_cifar10_v1`, trained with exactly the CNN's
recipe: `gcm_cifar10` had more help (a teacher, longer training, two views at inference), and
`gcm_cifar10_clip` is the second version's weights (`gcm_cifar10_clip_v2`, one view; its JSON line is printed above)
with two views at inference (the mirror image's maps, flipped back, averaged in). And
look at the time per image: GCM's decoder works at full resolution, the CNN's last layers at
8 x 8.

## 4. Reading the maps: Fig. 7

For each test image: the original, then every class's CCM, its **positive part** in the first
row (where the image speaks *for* the class) and its **negative part** below (where it speaks
*against* it). One brightness scale per figure, so a brighter map is a bigger contribution;
the number under each column is the class score, the mean of that CCM. The true class is framed
red.
""")

code("""
scores_all = train.predict(net, cifar.images)
correct = torch.nonzero(scores_all.argmax(1) == cifar.labels).flatten()
for i in correct[[0, 3, 7]].tolist():
    _, ccm_i, s_i = ga.class_maps(net, cifar.images[i:i + 1])
    fig = ga.ccm_figure(cifar.images[i], ccm_i[0], s_i[0], classes, label=int(cifar.labels[i]),
                        title=f"test image {i} ({classes[cifar.labels[i]]}): CCM per class, positive / negative part")
    plt.show()
""")

md(r"""
**What to notice.** The true class's positive part lights up the object, not the background;
most other classes are dim in the positive row and brighter in the negative row. Because the
CCM is the image times a weight, dark parts of an image stay dark in every map: GCM cannot
"see" evidence in black pixels, a limit of the multiplicative design worth keeping in mind.

## 5. Visual mental arithmetic

The paper's promise (section 3.6): since the score is the mean of the map, you can guess the
class from the maps alone. Try it: the ten positive CCMs without numbers. Pick your guess, then
tick *reveal* to see the scores and the truth.
""")

code("""
def render_guess(image: int, guess: int, reveal: bool):
    x = cifar.images[image:image + 1]
    _, ccm_i, s_i = ga.class_maps(net, x)
    truth = int(cifar.labels[image])
    fig = ga.ccm_figure(x[0], ccm_i[0], s_i[0], classes, label=truth if reveal else None,
                        show="positive", numbers=reveal)
    verdict = (f"your guess '{classes[guess]}' is {'right' if guess == truth else 'wrong'}: true class "
               f"'{classes[truth]}', GCM says '{classes[s_i.argmax().item()]}'") if reveal else \\
              f"test image {image}: which class? (your guess: '{classes[guess]}')"
    fig.suptitle(verdict)
    return fig

plt.close(render_guess(0, 3, False)); plt.close(render_guess(1, 8, True))  # what the widget draws
""")

code("""
widgets.interact_view(render_guess, image=widgets.index_slider(len(cifar), value=12),
                      guess=widgets.class_slider(classes, value=0, description="guess"),
                      reveal=widgets.checkbox("reveal"))
""", tags=["nbval-ignore-output"])

md(r"""
## 6. Clipping the negative part: Fig. 8 and section 5(2)

Section 4.3 adds a ReLU after layer 15 and retrains: every CWM, and so every CCM, is now
$\ge 0$. A class can no longer *subtract* evidence, only add less. The paper saw that with the
negative part the maps of the *non-target* classes look cleaner, and it left it at that. We
measure it: for each test image, the share of all positive CCM mass that lies in the other
nine classes' maps,

$$\text{non-target share} = \frac{\sum_{j \ne y} \sum \max(M^{(j)}_{CCM}, 0)}{\sum_j \sum \max(M^{(j)}_{CCM}, 0)},$$

0 when only the true class lights up, 0.9 when all ten light up equally.
""")

code("""
i = correct[0].item()
_, ccm_i, s_i = ga.class_maps(net_clip, cifar.images[i:i + 1])
fig = ga.ccm_figure(cifar.images[i], ccm_i[0], s_i[0], classes, label=int(cifar.labels[i]), show="positive",
                    title=f"clipped GCM (ReLU after layer 15), test image {i}: positive CCMs (there is no negative part)")
plt.show()

share = {name: ga.over_batches(model, cifar.images, lambda cwm, ccm, s, y: ga.nontarget_positive_share(ccm, y),
                               labels=cifar.labels)
         for name, model in (("signed GCM", net), ("clipped GCM", net_clip))}
for name, s in share.items():
    print(f"{name}: non-target share of positive mass, mean {s.mean():.3f}, median {s.median():.3f} "
          f"over {len(s):,} test images")
fig, ax = plt.subplots(figsize=(6, 3))
for name, s in share.items():
    ax.hist(s.numpy(), bins=40, range=(0, 1), alpha=0.6, label=name)
ax.set(xlabel="non-target share of positive CCM mass", ylabel="test images", title="How much the other classes light up")
ax.legend(); plt.show()
cleaner = share["signed GCM"].mean() < share["clipped GCM"].mean()
print(f"verdict: with the negative part the other classes hold {'less' if cleaner else 'more'} of the positive mass "
      f"({share['signed GCM'].mean():.3f} against {share['clipped GCM'].mean():.3f} clipped); section 5(2)'s "
      f"'cleaner non-target maps' {'holds' if cleaner else 'does not hold'} by this measure")
""")

md(r"""
**What to notice.** Without a negative part, a class cannot say "this speaks *against* me"
except by a weight near zero, and a weight near zero on a bright pixel still leaves some
positive mass: every clipped CCM carries some of the image. With the negative part, the
evidence against a class is moved into its negative row, so the positive rows of the other
classes stay darker. The histogram shows it image by image, not only on average. The clipped
model's accuracy is in the table of section 3.
""")

md(r"""
## 7. Many examples: Fig. 9

Originals and the positive part of their true class's CCM, each scaled to its own maximum.
""")

code("""
pick = correct[:16]
_, ccm_p, _ = ga.class_maps(net, cifar.images[pick])
ccm_true = ccm_p[torch.arange(len(pick)), cifar.labels[pick]]
fig = ga.ccm_pairs_figure(cifar.images[pick], ccm_true, [classes[c] for c in cifar.labels[pick]],
                          title="CIFAR-10 test images and the positive CCM of their true class (gcm_cifar10)")
plt.show()
""")

md(r"""
## 8. What the maps say beyond the pictures

### A truck that is also an automobile

Among the test trucks GCM gets right, the one whose *automobile* score comes closest. Because
both scores are means of maps, their difference is the mean of the difference map
$M^{(truck)}_{CCM} - M^{(automobile)}_{CCM}$: red where the image speaks for "truck" more
than for "automobile", blue the other way round.
""")

code("""
truck, auto = classes.index("truck"), classes.index("automobile")
trucks = correct[cifar.labels[correct] == truck]
margin = scores_all[trucks, truck] - scores_all[trucks, auto]
i = trucks[margin.argmin()].item()
_, ccm_i, s_i = ga.class_maps(net, cifar.images[i:i + 1])
fig = ga.difference_figure(cifar.images[i], ccm_i[0], s_i[0], classes, truck, auto)
plt.show()
""")

md(r"""
### Two objects in one image

CIFAR-10 images hold one object. We make images with two: two test images of different classes,
each shrunk to half size, side by side on grey. If the maps are spatially faithful, the CCM of
the left object's class should put its positive mass on the left half, the right one's on the
right. We measure the share of positive mass in the *correct* half over many such pairs.
""")

code("""
g = torch.Generator().manual_seed(0)
n_pairs = config.pick(50, 500)
a = correct[torch.randint(len(correct), (n_pairs,), generator=g)]
b = correct[torch.randint(len(correct), (n_pairs,), generator=g)]
keep = cifar.labels[a] != cifar.labels[b]
a, b = a[keep], b[keep]
pairs = torch.stack([ga.side_by_side(cifar.images[i], cifar.images[j]) for i, j in zip(a, b)])
_, ccm_two, s_two = ga.class_maps(net, pairs[:8])
fig = ga.ccm_figure(pairs[0], ccm_two[0], s_two[0], classes, show="positive",
                    title=f"two objects: {classes[cifar.labels[a[0]]]} (left) and {classes[cifar.labels[b[0]]]} (right)")
plt.show()
left_share = ga.over_batches(net, pairs, lambda cwm, ccm, s, y: ga.half_shares(ccm))
rows = torch.arange(len(a))
own_left = left_share[rows, cifar.labels[a]]          # left object's class: mass on the left
own_right = 1 - left_share[rows, cifar.labels[b]]     # right object's class: mass on the right
print(f"{len(a)} pairs: the left object's class puts {100 * own_left.mean():.1f}% of its positive mass "
      f"on the left half, the right object's class {100 * own_right.mean():.1f}% on the right half "
      f"(50% = no preference)")
top2 = train.predict(net, pairs).topk(2, dim=1).indices.sort(1).values
both = torch.stack([cifar.labels[a], cifar.labels[b]], 1).sort(1).values
print(f"both objects' classes are GCM's top two in {100 * (top2 == both).all(1).float().mean():.1f}% of the pairs")
""")

md(r"""
**What to notice.** Two different questions, two different answers. *Where*: each object's
class puts most of its positive mass on its own half, well above the 50% of no preference,
so the maps are spatially faithful even on images unlike any it was trained on. *What*: the
scores are much less sure; half-size objects on grey are far from CIFAR-10's full-frame
photos, and both objects rarely make the top two. A map can be right about where the evidence
is while the classifier is unsure what it is.
""")

md(r"""
## 9. House-number digits: does GCM attend to the centre digit? (section 4.5, Fig. 6)

On SVHN (the paper: 96.19%) the label is the *centre* digit of a crop that also shows parts of
its neighbours, and the paper's Fig. 6 shows the CCM on the centre digit. SVHN cannot be
downloaded here, so the course builds house-number-like images from MNIST
(`xai_helpers.digits`): coloured backgrounds, the label digit in the centre, distractor digits
beside it, and, unlike SVHN, the centre digit's **mask**, so we can measure where the map's mass
falls instead of eyeballing it.
""")

code("""
mnist_test = data.load("mnist", "test", n=config.pick(500, None))
house, centre_mask, neighbour_mask = digits.house_digits(mnist_test)
print(house.describe())
print(f"gcm_digits test accuracy: {100 * train.evaluate(net_digits, house):.2f}% on {len(house):,} images "
      f"(recorded in its JSON: {100 * models.read_meta('gcm_digits')['test_accuracy']:.2f}% on "
      f"{models.read_meta('gcm_digits')['test_size']:,})")
_, ccm_d, _ = ga.class_maps(net_digits, house.images[:12])
fig = ga.ccm_pairs_figure(house.images[:12], ccm_d[torch.arange(12), house.labels[:12]],
                          [f"label {int(c)}" for c in house.labels[:12]],
                          title="house-number-like digits and the positive CCM of the centre digit's class (Fig. 6)")
plt.show()
""")

code("""
ccm_true = ga.over_batches(net_digits, house.images, lambda cwm, ccm, s, y: ccm[torch.arange(len(y)), y],
                           labels=house.labels)
box = ga.bounding_boxes(centre_mask)  # the centre digit's box: strokes + the ground between them
light = ga.lighter_than_background(house.images, centre_mask)
regions = {"strokes": {"centre digit": centre_mask, "neighbour digits": neighbour_mask},
           "boxes": {"centre digit's box": box, "neighbour digits": neighbour_mask & ~box}}
for subset, keep in (("all images", torch.ones_like(light)), ("light digit on dark ground", light),
                     ("dark digit on light ground", ~light)):
    for kind, masks in regions.items():
        shares = ga.mask_shares(ccm_true[keep], {k: m[keep] for k, m in masks.items()})
        print(f"{subset} ({int(keep.sum()):,}), {kind}: " + " | ".join(
            f"{region} {100 * v['mass']:.1f}% of the mass on {100 * v['area']:.1f}% of the area "
            f"(x{v['mass'] / v['area']:.1f})" for region, v in shares.items()))
overall = ga.mask_shares(ccm_true, regions["strokes"])
ratio = {k: v["mass"] / v["area"] for k, v in overall.items()}
print(f"verdict: per unit of area the centre digit gets x{ratio['centre digit'] / ratio['neighbour digits']:.1f} "
      f"the positive mass of the neighbour digits; the paper's 'GCM attends to the centre digit' "
      f"{'holds' if ratio['centre digit'] > ratio['neighbour digits'] else 'does not hold'} by this measure")
""")

md(r"""
**What to notice.** Three measurements, read together. (1) Per unit of area, the centre digit
draws clearly more positive mass than the neighbours, which get about their share of the area:
the map prefers the digit that decides the label, as the paper's Fig. 6 suggests. (2) Most of
the mass is *not* on any digit: the coloured ground is bright, and the CCM is weight times
pixel, so even a small positive weight over the large ground adds up. (3) The split by polarity
shows the multiplicative design at work: a dark digit on a light ground cannot carry much mass
on its own strokes (dark pixels times any weight stay small), so its evidence moves to the
bright ground *inside* its box, between the strokes. "Where is the mass" and "where is the
digit" are not the same question for GCM; the figure above shows both cases.
""")

code("""
svhn = data.try_load("svhn", "test", n=500, verbose=True)
if svhn is not None and (config.CHECKPOINT_DIR / "gcm_svhn.pt").exists():
    net_svhn = models.load_pretrained("gcm_svhn")
    _, ccm_s, _ = ga.class_maps(net_svhn, svhn.images[:12])
    fig = ga.ccm_pairs_figure(svhn.images[:12], ccm_s[torch.arange(12), svhn.labels[:12]],
                              [f"label {int(c)}" for c in svhn.labels[:12]], title="SVHN: positive CCM of the true class")
    plt.show()
else:
    print("SVHN, or a gcm_svhn checkpoint, is not available here: train it where the download works with "
          "`python -m xai_helpers.train gcm_svhn` and run this cell again.")
""")

md(r"""
## 10. Explore

Image, class, which part of the CCM, which dataset and which model. Left to right: the image,
the CWM (the weights GCM generated for this image, signed, centred at zero), and the chosen part
of the CCM of the chosen class, with its score.
""")

code("""
SETS = {"CIFAR-10": (cifar, {"signed": net, "clipped": net_clip}),
        "house digits": (house, {"signed": net_digits, "clipped": net_digits})}

def render_explore(dataset: str, model: str, image: int, cls: int, part: str):
    images, nets = SETS[dataset]
    image = min(image, len(images) - 1)
    x = images.images[image:image + 1]
    cwm, ccm_e, s_e = ga.class_maps(nets[model], x)
    pos, neg = ga.parts(ccm_e[0, cls])
    shown = {"positive": pos, "negative": neg, "both": ccm_e[0, cls]}[part]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    viz.show_image(axes[0], x[0], f"{dataset} #{image}: {images.classes[images.labels[image]]}")
    viz.signed_heatmap(axes[1], cwm[0, cls], f"CWM '{images.classes[cls]}'", cbar_label="weight")
    if part == "both":
        viz.signed_heatmap(axes[2], shown.mean(0), f"CCM (mean over channels), score {s_e[0, cls]:+.3f}",
                           cbar_label="contribution")
    else:
        axes[2].imshow(viz.to_numpy_image(shown / (float(shown.max()) or 1.0)))
        axes[2].set(xticks=[], yticks=[], title=f"CCM {part} part, score {s_e[0, cls]:+.3f}")
    fig.suptitle(f"{dataset}, {model} model: class '{images.classes[cls]}'")
    fig.tight_layout()
    return fig

for args in [("CIFAR-10", "clipped", 3, 1, "positive"), ("house digits", "signed", 0, 7, "both")]:
    plt.close(render_explore(*args))  # what the widgets draw
""")

code("""
widgets.interact_view(render_explore,
                      dataset=widgets.dropdown(list(SETS), description="dataset"),
                      model=widgets.dropdown(["signed", "clipped"], description="model"),
                      image=widgets.index_slider(len(cifar), value=5),
                      cls=widgets.class_slider(classes, value=3),
                      part=widgets.dropdown(["positive", "negative", "both"], description="part"))
""", tags=["nbval-ignore-output"])

md(r"""
## Summary
- GCM generates one weight map per class (CWM), multiplies it with the image (CCM) and takes
  the mean as the score: the map shown *is* the computation (Eq. 1-7), checked above to float
  rounding.
- At about 162,000 parameters it classifies CIFAR-10 at the level of a plain CNN of the same
  size, at a higher cost per image (section 3).
- Positive and negative parts tell where the image speaks for and against each class; the
  measurements of sections 6, 8 and 9 say how faithful and how focused the maps are.

## Exercises
1. In section 2, replace `x` by `0.5 * x` (a darker image). What happens to every score, and
   why does Eq. 7 predict it? Is the *prediction* unchanged?
2. Find the test image with the *lowest* non-target share and the one with the highest
   (section 6). What distinguishes them?
3. In the two-object experiment, swap left and right for the same pairs. Does the left-half
   share of each class follow its object?
4. Retrain (`RETRAIN = True`, full mode, a few hours on a CPU) with `jpeg_p=0` in the recipe and
   compare the accuracy drop that JPEG causes.
""")

write("notebooks/03_generative_contribution_maps.ipynb")
