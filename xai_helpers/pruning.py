"""Region pruning of an MLP's first layer: the regions each neuron needs (paper 4, Fig. 2).

Paper 4 of the course's collection (seed 004; title and authors are not in the extracted
text): pruning hidden-layer parameters to make a network's decision basis explicit. The
weights from the 784 inputs to one first-layer neuron, drawn as a 28 x 28 image, show what
the neuron looks at (Fig. 1); removing the weights that do not matter should leave the regions
a decision needs. Following Han et al. (train, prune, retrain), on a trained network:

1. delete the ``weight_rate`` (paper: 0.5) of the first layer's weights with the smallest
   magnitude |w| (one threshold for the whole layer) -> :func:`magnitude_mask`;
2. in each neuron's 28 x 28 weight image, group the remaining weights into connected regions
   (4- or 8-connectivity: not given by the paper) -> :func:`find_regions`;
3. region index = mean |w| of the region's weights -> ``Regions.index``;
4. over all regions of all neurons, delete the ``region_rate`` (paper: 0.4) of the regions
   with the smallest index -> :func:`region_mask`;
5. retrain with the masks enforced (``torch.nn.utils.prune``: the layer computes
   ``weight = weight_orig * weight_mask``, so a pruned weight stays exactly 0);
6. repeat 2-5 ``rounds`` times, or until a share of the neurons is more than 90% pruned ->
   :func:`region_pruning`.

Paper's result (MNIST, 784-100-50-10): 54% of the neurons end with more than 90% of their
weights pruned, 46% with at most 40%; test accuracy 94.5% before, 94.1% after. The paper gives
neither the number of rounds nor the retraining length: both are parameters here. The
reproduction retrains one epoch per round and stops at the first round where at least the
paper's 54% of the neurons are more than 90% pruned (each round deletes 40% of the regions,
so every neuron empties eventually: the round count decides this share), then compares the
rest: accuracy, the other group, the ablations.

Ablations at equal sparsity (``criterion``): ``"magnitude"`` replaces step 4 by deleting the
same number of weights by smallest |w|; ``"random"`` deletes the same numbers of weights at
random (step 1 included). ``python -m xai_helpers.pruning`` runs the reproduction and writes
``pruning_mnist.json`` and the checkpoint ``mlp_mnist_pruned`` into ``build/``;
``--replace-committed`` writes them over the committed ones in ``data/``.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from torch import nn
from torch.nn.utils import prune

from . import config, data, models, train
from .hooks import capture, get_layer

__all__ = ["Regions", "RoundRecord", "PruningResult", "magnitude_mask", "find_regions",
           "region_mask", "apply_mask", "remove_reparametrisation", "pruned_fraction",
           "neuron_shares", "region_pruning", "class_importance", "summary", "reproduce",
           "read_results", "PAPER"]

PAPER = {"accuracy_before": 0.945, "accuracy_after": 0.941, "neurons_over_90_pruned": 0.54,
         "neurons_at_most_40_pruned": 0.46, "weight_rate": 0.5, "region_rate": 0.4,
         "hidden": [100, 50], "batch_size": 100, "epochs": 15, "lr": 0.1}
RESULT = "pruning_mnist"
SHAPE = (28, 28)


@dataclass(frozen=True)
class Regions:
    """Connected regions of the remaining weights, numbered 1..R over all neurons (step 2).

    ``labels`` (neurons, H, W) int64: region of each weight, 0 where pruned. ``neuron``,
    ``size`` and ``index`` (R,): the neuron of each region, its number of weights, and its
    index = mean |w| over its weights (step 3); entry ``r - 1`` is region ``r``.
    """

    labels: torch.Tensor
    neuron: torch.Tensor
    size: torch.Tensor
    index: torch.Tensor


@dataclass(frozen=True)
class RoundRecord:
    """The state after one round (round 0: step 1 only, not retrained)."""

    round: int
    accuracy_pruned: float  # test accuracy right after pruning, before retraining
    accuracy: float  # test accuracy after retraining (round 0: = accuracy_pruned)
    sparsity: float  # pruned fraction of all first-layer weights
    pruned_fraction: torch.Tensor  # (neurons,) pruned fraction of each neuron's weights
    over_90: float  # share of neurons with more than 90% of their weights pruned
    at_most_40: float  # share of neurons with at most 40% pruned
    weights_pruned: int  # weights deleted in this round
    regions: int  # regions found (criterion "region"; else 0)
    regions_pruned: int


@dataclass(frozen=True)
class PruningResult:
    """Result of :func:`region_pruning`: the pruned model (plain weights, zeros where pruned),
    one record per round, and the first layer's weights (neurons x H x W, zeros where pruned)
    and mask after every round (for the figures)."""

    model: nn.Module
    rounds: list[RoundRecord]
    weights: list[torch.Tensor]
    masks: list[torch.Tensor]
    criterion: str
    seconds: float


def _prune_smallest(scores: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """``mask`` with the ``k`` alive entries of smallest ``scores`` set False (ties: first)."""
    alive = mask.flatten().nonzero().flatten()
    if not 0 <= k <= len(alive):
        raise ValueError(f"cannot prune {k} of {len(alive)} remaining weights")
    order = torch.sort(scores.flatten()[alive], stable=True).indices[:k]
    out = mask.clone().flatten()
    out[alive[order]] = False
    return out.view_as(mask)


def magnitude_mask(weight: torch.Tensor, rate: float = 0.5,
                   mask: torch.Tensor | None = None) -> torch.Tensor:
    """Step 1: bool mask (True = kept) deleting ``round(rate * weight.numel())`` more weights,
    those of smallest |w| among the remaining ones (one threshold over the whole layer)."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    mask = torch.ones_like(weight, dtype=torch.bool) if mask is None else mask.bool()
    return _prune_smallest(weight.detach().abs(), mask, round(rate * weight.numel()))


def find_regions(weight: torch.Tensor, mask: torch.Tensor, *, connectivity: int = 4,
                 shape: tuple[int, int] = SHAPE) -> Regions:
    """Steps 2-3: connected regions of each neuron's remaining weights in its ``shape`` image
    (``scipy.ndimage.label``; ``connectivity`` 4: edge neighbours, 8: also diagonal ones), and
    each region's index, the mean |w| of its weights.

    ``weight`` and ``mask``: (neurons, H * W) as in ``nn.Linear``, or (neurons, H, W).
    """
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    alive = mask.detach().bool().reshape(-1, *shape).cpu().numpy()
    structure = np.zeros((3, 3, 3), dtype=bool)  # no connection between neurons
    structure[1] = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    labels, count = ndimage.label(alive, structure=structure)
    labels = torch.from_numpy(labels).long()
    flat = labels.flatten()
    magnitude = weight.detach().abs().reshape(-1).cpu().double()
    size = torch.bincount(flat, minlength=count + 1)[1:]
    total = torch.bincount(flat, weights=magnitude, minlength=count + 1)[1:]
    first = torch.full((count + 1,), len(labels), dtype=torch.long)
    neuron = torch.arange(len(labels)).repeat_interleave(shape[0] * shape[1])
    first = first.scatter_reduce(0, flat, neuron, "amin")[1:]
    return Regions(labels, first, size, (total / size.clamp(min=1)).float())


def region_mask(weight: torch.Tensor, mask: torch.Tensor, *, rate: float = 0.4,
                connectivity: int = 4) -> tuple[torch.Tensor, Regions]:
    """Steps 2-4: the new mask (shape of ``mask``) without the ``round(rate * R)`` regions of
    smallest index among all R regions of all neurons, and the regions it was chosen from."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    regions = find_regions(weight, mask, connectivity=connectivity)
    drop = torch.sort(regions.index, stable=True).indices[:round(rate * len(regions.index))]
    dropped = torch.zeros(len(regions.index) + 1, dtype=torch.bool)
    dropped[drop + 1] = True
    keep = mask.bool() & ~dropped[regions.labels].view_as(mask).to(mask.device)
    return keep, regions


def apply_mask(layer: nn.Module, mask: torch.Tensor) -> nn.Module:
    """Enforce ``mask`` on ``layer.weight`` with ``torch.nn.utils.prune.custom_from_mask``
    (an earlier mask is made permanent first; ``mask`` should lie inside it)."""
    remove_reparametrisation(layer)
    return prune.custom_from_mask(layer, "weight", mask.to(layer.weight.device,
                                                           layer.weight.dtype))


def remove_reparametrisation(layer: nn.Module) -> nn.Module:
    """Make the pruning permanent: a plain ``weight`` parameter with zeros where pruned."""
    if hasattr(layer, "weight_mask"):
        prune.remove(layer, "weight")
    return layer


def pruned_fraction(mask: torch.Tensor) -> torch.Tensor:
    """(neurons,) fraction of each neuron's weights that is pruned (``mask`` False)."""
    return 1.0 - mask.bool().flatten(1).float().mean(1)


def neuron_shares(mask: torch.Tensor, over: float = 0.9,
                  at_most: float = 0.4) -> tuple[float, float]:
    """Shares of neurons with more than ``over`` and with at most ``at_most`` of their weights
    pruned (the paper's 54% / 46%)."""
    fraction = pruned_fraction(mask)
    return (fraction > over).float().mean().item(), (fraction <= at_most).float().mean().item()


def _record(number, mask, accuracy_pruned, accuracy, weights_pruned, regions=None, dropped=0):
    over, at_most = neuron_shares(mask)
    return RoundRecord(number, accuracy_pruned, accuracy, 1.0 - mask.float().mean().item(),
                       pruned_fraction(mask).cpu(), over, at_most, weights_pruned,
                       0 if regions is None else len(regions.index), dropped)


def region_pruning(model: nn.Module, trainset: data.ImageData, test: data.ImageData, *,
                   weight_rate: float = 0.5, region_rate: float = 0.4, rounds: int = 3,
                   until_over_90: float | None = None, connectivity: int = 4,
                   retrain_epochs: int = 1, layer: str = "fc1",
                   criterion: str = "region", schedule: list[int] | None = None,
                   recipe: models.Recipe = models.PAPER4_RECIPE, seed: int = 0,
                   device: str | None = None) -> PruningResult:
    """Paper 4's pruning (Fig. 2, steps 1-6) of ``layer`` of a copy of ``model``.

    Parameters
    ----------
    model : trained classifier whose ``layer`` is an ``nn.Linear`` on 28 x 28 images;
        not modified
    trainset, test : retraining data and the data the accuracies are measured on
    weight_rate : step 1, fraction of the layer's weights deleted by magnitude (paper 0.5)
    region_rate : step 4, fraction of the regions deleted in each round (paper 0.4)
    rounds : how often steps 2-5 run (step 6; not given by the paper); with
        ``until_over_90`` the most rounds
    until_over_90 : stop after the first round in which at least this share of the neurons
        is more than 90% pruned (None: always ``rounds`` rounds)
    connectivity : 4 or 8, what "connected" means in step 2 (not given by the paper)
    retrain_epochs : epochs of step 5 per round, with ``recipe`` (plain SGD 0.1, batch 100)
    criterion : ``"region"`` (the paper), or the ablations ``"magnitude"`` (step 4 deletes
        the smallest |w| instead of regions) and ``"random"`` (every deletion random)
    schedule : for the ablations, the weights to delete at step 1 and in each round (the
        ``weights_pruned`` of a region run), so that the sparsity is the same
    seed : seeds the random criterion and the retraining's shuffling (``seed + round``)

    Returns
    -------
    PruningResult; record 0 is the state after step 1 (not retrained), record r after
    round r's retraining.
    """
    if criterion not in ("region", "magnitude", "random"):
        raise ValueError(f"criterion must be 'region', 'magnitude' or 'random', not "
                         f"{criterion!r}")
    if criterion != "region" and (schedule is None or len(schedule) != rounds + 1):
        raise ValueError(f"criterion {criterion!r} needs schedule: {rounds + 1} counts")
    tick = time.perf_counter()
    device = device or config.device()
    net = copy.deepcopy(model).to(device)
    fc = get_layer(net, layer)
    generator = torch.Generator().manual_seed(seed)

    def select(mask: torch.Tensor, step: int):
        weight = fc.weight.detach()
        if criterion == "random":
            scores = torch.rand(weight.shape, generator=generator).to(weight.device)
            return _prune_smallest(scores, mask, schedule[step]), None
        if step == 0 or criterion == "magnitude":
            k = round(weight_rate * weight.numel()) if schedule is None else schedule[step]
            return _prune_smallest(weight.abs(), mask, k), None
        return region_mask(weight, mask, rate=region_rate, connectivity=connectivity)

    mask = torch.ones_like(fc.weight, dtype=torch.bool)
    records, weights, masks = [], [], []
    for step in range(rounds + 1):
        new, regions = select(mask, step)
        dropped = int((mask & ~new).sum())
        mask = new
        apply_mask(fc, mask)
        before = train.evaluate(net, test, device=device)
        after = before
        if step > 0:
            train.fit(net, trainset, replace(recipe, epochs=retrain_epochs, seed=seed + step),
                      device=device, quiet=True)
            after = train.evaluate(net, test, device=device)
        n_regions_dropped = 0 if regions is None else round(region_rate * len(regions.index))
        records.append(_record(step, mask, before, after, dropped, regions, n_regions_dropped))
        weights.append(fc.weight.detach().cpu().clone().view(-1, *SHAPE))
        masks.append(mask.cpu().clone().view(-1, *SHAPE))
        if step and until_over_90 is not None and records[-1].over_90 >= until_over_90:
            break
    remove_reparametrisation(fc)
    return PruningResult(net.cpu().eval(), records, weights, masks, criterion,
                         time.perf_counter() - tick)


def class_importance(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *,
                     layer: str = "fc1", classes: int = 10) -> torch.Tensor:
    """(classes, H, W) input-importance map of each class through the (pruned) first layer
    ("beyond the paper": its open problem, which input regions matter for each digit).

    For class c, with ``z_j`` the pre-activation of first-layer neuron j and ``M * W`` its
    masked weights (zeros where pruned)::

        I_c(p) = sum_j e_cj (M * W)_jp,   e_cj = mean over the images of class c of
                                                 d logit_c / d z_j   (the neuron's effect).

    So I_c weights each neuron's remaining weight image by how much that neuron moves the
    class-c logit on class-c images; I_c(p) > 0: ink at pixel p speaks for c. As the layer is
    linear, I_c is also the mean input gradient of logit c over those images (divided by the
    first layer's input scaling, 1 for ``mlp``); the tests check this.
    """
    fc = get_layer(model, layer)
    was_training = model.training
    model.eval()
    effect = torch.zeros(classes, fc.out_features)
    try:
        with capture(model, [layer]) as store:
            for c in range(classes):
                x = inputs[labels == c]
                if len(x) == 0:
                    continue
                model(x.to(fc.weight.device))[:, c].sum().backward()
                effect[c] = store[layer]["grad"].detach().cpu().mean(0)
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return (effect @ fc.weight.detach().cpu()).view(classes, *SHAPE)


def summary(result: PruningResult) -> dict:
    """The record of a run as written into ``pruning_mnist.json`` (final state + rounds)."""
    last = result.rounds[-1]
    return {"criterion": result.criterion, "accuracy_after": round(last.accuracy, 6),
            "sparsity": round(last.sparsity, 6),
            "neurons_over_90_pruned": round(last.over_90, 4),
            "neurons_at_most_40_pruned": round(last.at_most_40, 4),
            "per_round": [{"round": r.round, "accuracy_pruned": round(r.accuracy_pruned, 6),
                           "accuracy": round(r.accuracy, 6), "sparsity": round(r.sparsity, 6),
                           "neurons_over_90_pruned": round(r.over_90, 4),
                           "neurons_at_most_40_pruned": round(r.at_most_40, 4),
                           "weights_pruned": r.weights_pruned, "regions": r.regions,
                           "regions_pruned": r.regions_pruned,
                           "pruned_fraction": [round(f, 4) for f in r.pruned_fraction.tolist()]}
                          for r in result.rounds],
            "seconds": round(result.seconds, 1)}


def reproduce(*, max_rounds: int = 15, until_over_90: float | None = 0.54,
              retrain_epochs: int = 1, connectivity: int = 4, weight_rate: float = 0.5,
              region_rate: float = 0.4, out_dir: Path | None = None,
              checkpoint_dir: Path | None = None, replace_committed: bool = False) -> dict:
    """The full reproduction on ``mlp_mnist`` and full MNIST: region pruning (module
    docstring), the ablations at equal sparsity and a dense control with the same retraining,
    ``pruning_mnist.json`` (our numbers beside the paper's, machine, date, timing) and the
    checkpoint ``mlp_mnist_pruned``. They go to ``build/results/`` and ``build/checkpoints/``
    unless ``out_dir`` / ``checkpoint_dir`` say otherwise; ``replace_committed=True`` writes
    them over ``data/results/`` and ``data/checkpoints/`` (what notebook 05 reads)."""
    for name, value, low in (("max_rounds", max_rounds, 1), ("retrain_epochs", retrain_epochs, 0)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if until_over_90 is not None and not 0 < until_over_90 <= 1:
        raise ValueError(f"until_over_90 is a share of neurons in (0, 1] (or None: never stop "
                         f"early), got {until_over_90!r}")
    if replace_committed:
        checkpoint_dir, out_dir = config.CHECKPOINT_DIR, config.RESULTS_DIR
    checkpoint_dir = Path(checkpoint_dir or config.BUILD_DIR / "checkpoints")
    out_dir = Path(out_dir or config.BUILD_DIR / "results")
    trainset, test = data.load("mnist", "train"), data.load("mnist", "test")
    if not (trainset.full and test.full):
        raise data.DataUnavailableError("the reproduction needs full MNIST: set XAI_DATA_DIR")
    tick, cpu = time.perf_counter(), time.process_time()
    model = models.load_pretrained("mlp_mnist")
    knobs = {"retrain_epochs": retrain_epochs, "connectivity": connectivity,
             "weight_rate": weight_rate, "region_rate": region_rate}
    result = region_pruning(model, trainset, test, rounds=max_rounds,
                            until_over_90=until_over_90, **knobs)
    knobs["rounds"] = len(result.rounds) - 1
    schedule = [r.weights_pruned for r in result.rounds]
    ablations = {name: region_pruning(model, trainset, test, **knobs, criterion=criterion,
                                      schedule=plan)
                 for name, criterion, plan in (("random", "random", schedule),
                                               ("magnitude", "magnitude", schedule),
                                               ("dense", "magnitude", [0] * len(schedule)))}
    last = result.rounds[-1]
    record = {"accuracy_before": round(train.evaluate(model, test), 6),
              "accuracy_after": round(last.accuracy, 6),
              "neurons_over_90_pruned": round(last.over_90, 4),
              "neurons_at_most_40_pruned": round(last.at_most_40, 4),
              **knobs, "max_rounds": max_rounds, "until_over_90": until_over_90,
              "sparsity": round(last.sparsity, 6), "test_size": len(test),
              "model": "mlp_mnist", "checkpoint": "mlp_mnist_pruned", "paper": PAPER,
              "regions": summary(result),
              "ablations": {name: summary(run) for name, run in ablations.items()},
              "ablations_note": "random / magnitude: the same numbers of weights deleted as "
                                "by the region run, at step 1 and in every round, at random / "
                                "by smallest |w|; dense: nothing deleted, the same retraining",
              "seconds": round(time.perf_counter() - tick, 1),
              "cpu_seconds": round(time.process_time() - cpu, 1),
              "machine": train.machine_info(), "threads": torch.get_num_threads(),
              "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}
    meta = {**{k: v for k, v in models.read_meta("mlp_mnist").items()
               if k not in ("name", "sha256", "n_parameters", "description", "date",
                            "history_test_accuracy", "train_images_per_s")},
            "description": models.spec("mlp_mnist_pruned").description,
            "test_accuracy": record["accuracy_after"], "pruned_from": "mlp_mnist",
            "pruning": {**knobs, "sparsity": record["sparsity"],
                        "retrain_epochs_total": knobs["rounds"] * retrain_epochs},
            "training_time_s": round(result.seconds, 1), "machine": record["machine"],
            "date": record["date"]}
    models.save_checkpoint(result.model, "mlp_mnist_pruned", meta, checkpoint_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{RESULT}.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"-> {config.show_path(checkpoint_dir / 'mlp_mnist_pruned.pt')} and "
          f"{config.show_path(out_dir / f'{RESULT}.json')}"
          + (" (replacing the committed files)" if replace_committed else
             " (the committed files are unchanged; --replace-committed writes over them)"))
    return record


def read_results(path: Path | None = None) -> dict:
    """The committed reproduction record (what notebook 05 shows)."""
    return json.loads(Path(path or config.RESULTS_DIR / f"{RESULT}.json").read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="paper 4's region pruning on mlp_mnist")
    parser.add_argument("--max-rounds", type=int, default=15)
    parser.add_argument("--until", type=float, default=PAPER["neurons_over_90_pruned"],
                        help="stop once this share of neurons is > 90%% pruned (0: never)")
    parser.add_argument("--retrain-epochs", type=int, default=1)
    parser.add_argument("--connectivity", type=int, default=4, choices=(4, 8))
    parser.add_argument("--replace-committed", action="store_true",
                        help="write over data/checkpoints/mlp_mnist_pruned.* and "
                             "data/results/pruning_mnist.json (default: build/)")
    args = parser.parse_args(argv)
    try:
        r = reproduce(max_rounds=args.max_rounds, until_over_90=args.until or None,
                      retrain_epochs=args.retrain_epochs, connectivity=args.connectivity,
                      replace_committed=args.replace_committed)
    except ValueError as err:
        parser.error(str(err))
    print(f"accuracy {100 * r['accuracy_before']:.2f}% -> {100 * r['accuracy_after']:.2f}% "
          f"(paper 94.5% -> 94.1%), sparsity {100 * r['sparsity']:.1f}%, neurons >90% pruned "
          f"{100 * r['neurons_over_90_pruned']:.0f}% (paper 54%), <=40% pruned "
          f"{100 * r['neurons_at_most_40_pruned']:.0f}% (paper 46%), {r['rounds']} rounds")


if __name__ == "__main__":
    main()
