"""``tfsal train``: train the classifier, the inpainter and the amortised explainer on a manifest."""

from __future__ import annotations

from pathlib import Path

import click

from tfsal.cli.params import RANGE, SIZE

STRATEGIES = ("auto", "one-device", "mirrored")


@click.group()
def train() -> None:
    """Train the models tfsal uses."""


def run_options(command):
    """The options every training command shares: seed, strategy, checkpoints, resuming."""
    options = [
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seed of the weights and of every random draw of the data."),
        click.option("--strategy", type=click.Choice(STRATEGIES), default="auto", show_default=True,
                     help="tf.distribute strategy: auto = mirrored over several GPUs, else one device."),
        click.option("--checkpoint-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Checkpoints and data cache [default: OUT.ckpt next to OUT]."),
        click.option("--resume", is_flag=True, help="Go on from the last finished epoch in the checkpoint folder."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def network_options(command):
    """The classifier's network: width multiplier, global pooling, backbone."""
    options = [
        click.option("--alpha", type=click.FloatRange(min=0, min_open=True), default=0.25, show_default=True,
                     help="Width multiplier of the network (--backbone)."),
        click.option("--pooling", type=click.Choice(["avg", "max"]), default="avg", show_default=True,
                     help="Global pool of the last features: average, or max (a small lesion is not averaged "
                          "away)."),
        click.option("--backbone", type=click.Choice(["mobilenet", "mobilenet_v3_small"]), default="mobilenet",
                     show_default=True, help="The network under the head: the paper's MobileNet, or "
                                             "MobileNetV3-Small (inverted residuals with squeeze-and-excitation)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _print_epoch(entry: dict) -> None:
    fields = [f"{entry['phase']} epoch {entry['epoch'] + 1}", f"loss {entry['loss']:.4f}"]
    if "grid_loss" in entry:
        fields.append(f"grid loss {entry['grid_loss']:.4f}")
    if "accuracy" in entry:
        fields.append(f"accuracy {entry['accuracy']:.3f}")
    if "val_auc" in entry:
        fields.append(f"val AUC {entry['val_auc']:.4f}")
    if "val_hole_l1" in entry:
        fields.append(f"val hole L1 {entry['val_hole_l1']:.4f}, PSNR {entry['val_psnr']:.2f} dB")
    if "val_loss" in entry and "val_flipped" in entry:
        fields.append(f"val loss {entry['val_loss']:.4f}, flips {entry['val_flipped']}, area {entry['val_area']:.3f}")
    fields.append(f"{entry['seconds']:.0f} s")
    click.echo(", ".join(fields), err=True)


@train.command()
@click.option("--data", required=True, type=click.Path(exists=True, path_type=Path),
              help="labels.csv or its folder; trains on 'train', early-stops on 'val'.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output .keras file.")
@click.option("--epochs", type=click.IntRange(min=0), default=60, show_default=True,
              help="Whole-image epochs (at most).")
@click.option("--pretrain-epochs", type=click.IntRange(min=0), default=3, show_default=True,
              help="Patch pre-training epochs (background vs mass); 0 skips pre-training.")
@click.option("--patches-per-image", type=click.IntRange(min=1), default=16, show_default=True,
              help="Mass patches per mass image per pre-training epoch (as many background patches).")
@click.option("--patch-size", type=click.IntRange(min=32), default=None,
              help="Side of the pre-training patches in pixels at the working size [default: the paper's 224 px "
                   "at 576 rows, scaled: 100 at 256 rows].")
@click.option("--size", type=SIZE, default="256x192", show_default=True, help="Input size HxW.")
@network_options
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Images per batch (patch batches are twice as large).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=5e-4, show_default=True,
              help="Adam learning rate for whole images.")
@click.option("--pretrain-lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True,
              help="Adam learning rate for patch pre-training.")
@click.option("--patience", type=click.IntRange(min=0), default=10, show_default=True,
              help="Stop after this many epochs without a better validation AUC (0: never).")
@click.option("--no-augment", is_flag=True,
              help="Turn off rotation, zoom, flips, gamma and film tone of whole images.")
@click.option("--gamma", type=RANGE, default="1,1", show_default=True,
              help="Random tone curve image**g of whole images, log g uniform in [LOW, HIGH] (1,1: none; "
                   "an augmentation, so not with --no-augment).")
@click.option("--film-tone", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of whole training images given a scanned film's tone: stretched and lifted about the "
                   "tissue's mean under a film's shoulder, as the synthetic mixture's films (0: none; an "
                   "augmentation, so not with --no-augment).")
@click.option("--init", "init_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Fine-tune: start the whole-image phase from this classifier (no pre-training).")
@click.option("--infill-inpainter", type=click.Path(exists=True, dir_okay=False), default=None,
              help="In-fill augmentation: inpaint random healthy regions with this inpainter, label kept.")
@click.option("--infill-probability", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Share of training images that get in-fill (with --infill-inpainter).")
@click.option("--location-weight", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Weight of a lesion-grid loss on the last features, from the lesion masks (0: the image "
                   "label alone); trains a head that the written classifier leaves out.")
@run_options
def classifier(data, out, epochs, pretrain_epochs, patches_per_image, patch_size, size, alpha, pooling, backbone,
               batch_size, lr, pretrain_lr, patience, no_augment, gamma, film_tone, init_path, infill_inpainter,
               infill_probability, location_weight, seed, strategy, checkpoint_dir, resume) -> None:
    """Train the mass classifier (a MobileNet or MobileNetV3-Small): patch pre-training, then whole images."""
    from tfsal.train.classifier import ClassifierSettings, train_classifier

    try:
        settings = ClassifierSettings(
            size=size, alpha=alpha, pooling=pooling, backbone=backbone, pretrain_epochs=pretrain_epochs,
            patches_per_image=patches_per_image, patch_size=patch_size, epochs=epochs, batch_size=batch_size,
            pretrain_lr=pretrain_lr, lr=lr, patience=patience,
            augment=not no_augment, gamma=gamma, film_tone=film_tone,
            init=str(Path(init_path).resolve()) if init_path else None,
            infill_inpainter=str(Path(infill_inpainter).resolve()) if infill_inpainter else None,
            infill_probability=infill_probability, location_weight=location_weight, seed=seed, strategy=strategy)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    summary = train_classifier(data, out, settings, checkpoint_dir=checkpoint_dir, resume=resume,
                               progress=True, report=_print_epoch)
    click.echo(f"{summary['out']}: best validation AUC {summary['best_val_auc']:.4f} "
               f"(epoch {summary['best_epoch'] + 1}), {summary['epochs_run']} epochs, {summary['seconds']:.0f} s")


@train.command()
@click.option("--data", required=True, type=click.Path(exists=True, path_type=Path),
              help="labels.csv or its folder; trains on the healthy 'train' images, scores on healthy 'val' ones.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output .keras file.")
@click.option("--epochs", type=click.IntRange(min=0), default=10, show_default=True,
              help="Phase 1 epochs (batch normalisation everywhere).")
@click.option("--finetune-epochs", type=click.IntRange(min=0), default=5, show_default=True,
              help="Phase 2 epochs (encoder batch normalisation frozen, learning rate / 10).")
@click.option("--size", type=SIZE, default="256x192", show_default=True, help="Training size HxW.")
@click.option("--base-filters", type=click.IntRange(min=1), default=16, show_default=True,
              help="Filters of the first PConv layer (doubling per level).")
@click.option("--max-filters", type=click.IntRange(min=1), default=128, show_default=True,
              help="Most filters of any PConv layer.")
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=2e-4, show_default=True,
              help="Adam learning rate of phase 1 (phase 2 uses a tenth).")
@click.option("--max-holes", type=click.IntRange(min=1), default=400, show_default=True,
              help="Most holes per image (their side scales with the size: 8 px at 576 rows).")
@click.option("--blob-probability", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Share of masks that also get mass-sized smooth blobs (0: the paper's small holes alone).")
@click.option("--init", "init_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Start from this inpainter's weights (same filters) instead of a random initialisation.")
@click.option("--feature-model", default="default", show_default=True,
              help="Perceptual/style features: 'default' (the shipped classifier's early blocks), a .keras "
                   "classifier of the training size (its feature maps at strides 2, 4, 8), or 'none'.")
@run_options
def inpainter(data, out, epochs, finetune_epochs, size, base_filters, max_filters, batch_size, lr, max_holes,
              blob_probability, init_path, feature_model, seed, strategy, checkpoint_dir, resume) -> None:
    """Train the partial-convolution inpainter on healthy images, in two phases."""
    from tfsal.train.inpainter import InpainterSettings, train_inpainter

    settings = InpainterSettings(
        size=size, base_filters=base_filters, max_filters=max_filters, epochs=epochs,
        finetune_epochs=finetune_epochs, batch_size=batch_size, lr=lr, max_holes=max_holes,
        blob_probability=blob_probability, init=init_path, feature_model=feature_model, seed=seed, strategy=strategy)
    summary = train_inpainter(data, out, settings, checkpoint_dir=checkpoint_dir, resume=resume,
                              progress=True, report=_print_epoch)
    click.echo(f"{summary['out']}: best validation hole L1 {summary['best_val_hole_l1']:.4f} "
               f"(epoch {summary['best_epoch'] + 1}), {summary['epochs_run']} epochs, {summary['seconds']:.0f} s")


@train.command("explainer")
@click.option("--data", required=True, type=click.Path(exists=True, path_type=Path),
              help="labels.csv or its folder; trains on every 'train' image, keeps the best epoch on 'val'.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output .keras file (the mask network of AmortisedExplainer and tfsal export --mask-network).")
@click.option("--classifier", "classifier_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The classifier it will explain [default: the shipped one].")
@click.option("--inpainter", "inpainter_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The inpainter of its in-fill [default: the shipped one].")
@click.option("--epochs", type=click.IntRange(min=0), default=20, show_default=True,
              help="Distillation epochs, at most (fitting the optimiser's regions; 0 skips it).")
@click.option("--objective-epochs", type=click.IntRange(min=0), default=0, show_default=True,
              help="Then epochs on the optimiser's own loss, at most.")
@click.option("--delete-weight", type=click.FloatRange(min=0, min_open=True), default=20.0, show_default=True,
              help="Distillation: weight of the cells the optimiser deletes (a few per cent of the breast).")
@click.option("--teacher-steps", type=click.IntRange(min=1), default=100, show_default=True,
              help="Steps of the optimiser that makes the regions to distil.")
@click.option("--network", type=click.Choice(["auto", "features", "image"]), default="auto", show_default=True,
              help="The mask network: a head on the classifier's frozen feature maps, a small network on the "
                   "image, or auto (features where the classifier has a map at the mask cell's stride).")
@click.option("--patience", type=click.IntRange(min=1), default=5, show_default=True,
              help="End a phase after this many epochs without a lower validation objective.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True,
              help="Adam learning rate of the distillation (the objective phase uses a tenth).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the weights and the data order.")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Checkpoints [default: OUT.ckpt next to OUT].")
@click.option("--resume", is_flag=True, help="Go on from the last finished epoch in the checkpoint folder.")
def explainer(data, out, classifier_path, inpainter_path, epochs, objective_epochs, delete_weight, teacher_steps,
              network, patience, batch_size, lr, seed, checkpoint_dir, resume) -> None:
    """Train the amortised explainer's mask network: one pass proposes the region the counterfactual
    optimiser would search for (trained on the optimiser's own loss), verified by the inpainter."""
    from tfsal.train.explainer import ExplainerSettings, train_explainer

    try:
        settings = ExplainerSettings(epochs=epochs, objective_epochs=objective_epochs, delete_weight=delete_weight,
                                     teacher_steps=teacher_steps, network=network, patience=patience,
                                     batch_size=batch_size, lr=lr,
                                     objective_lr=lr / 10, seed=seed, classifier=classifier_path,
                                     inpainter=inpainter_path)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    summary = train_explainer(data, out, settings, checkpoint_dir=checkpoint_dir, resume=resume, progress=True,
                              report=_print_epoch)
    click.echo(f"{summary['out']} ({summary['network']} network): best validation loss {summary['best_val_loss']:.4f} "
               f"(epoch {summary['best_epoch'] + 1}; flips {summary['best_val_flipped']} of the positives with "
               f"{summary['best_val_area']:.3f} of the breast), {summary['epochs_run']} epochs, "
               f"{summary['seconds']:.0f} s")


WEAK_EXIT = 3
"""Exit status of ``tfsal train all`` when the classifier is weak and --allow-weak was not given."""


@train.command("all")
@click.option("--data", required=True, type=click.Path(exists=True, path_type=Path),
              help="labels.csv or its folder, with 'train' and 'val' splits ('test' optional, reported only).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: classifier.keras, inpainter.keras, the model card README.md and card.json.")
@click.option("--init-from-shipped", is_flag=True,
              help="Fine-tune the shipped classifier and inpainter instead of training from scratch (small data).")
@click.option("--size", type=SIZE, default="256x192", show_default=True, help="Input size HxW.")
@network_options
@click.option("--pretrain-epochs", type=click.IntRange(min=0), default=10, show_default=True,
              help="Classifier patch pre-training epochs (from scratch only).")
@click.option("--epochs", type=click.IntRange(min=0), default=80, show_default=True,
              help="Classifier whole-image epochs, at most (from scratch only).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True,
              help="Classifier learning rate, whole images (from scratch only).")
@click.option("--patience", type=click.IntRange(min=0), default=12, show_default=True,
              help="Early-stopping patience of the classifier (from scratch only).")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Classifier images per batch.")
@click.option("--inpainter-epochs", type=click.IntRange(min=0), default=10, show_default=True,
              help="Inpainter phase 1 epochs.")
@click.option("--inpainter-finetune-epochs", type=click.IntRange(min=0), default=5, show_default=True,
              help="Inpainter phase 2 epochs (encoder batch normalisation frozen).")
@click.option("--finetune-epochs", type=click.IntRange(min=1), default=8, show_default=True,
              help="Classifier epochs with in-fill augmentation (the best validation AUC is kept).")
@click.option("--finetune-lr", type=click.FloatRange(min=0, min_open=True), default=2e-4, show_default=True,
              help="Learning rate of the in-fill fine-tuning.")
@click.option("--infill-probability", type=click.FloatRange(0, 1), default=0.75, show_default=True,
              help="Share of fine-tuning images that get in-fill.")
@click.option("--gamma", type=RANGE, default="1,1", show_default=True,
              help="Random tone curve image**g of the classifier's training images, log g uniform in [LOW, HIGH].")
@click.option("--film-tone", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of the classifier's training images given a scanned film's tone (0: none).")
@click.option("--check-runs", type=click.IntRange(min=1), default=3, show_default=True,
              help="Random draws of the holes in the Fig. 2 check.")
@click.option("--check-limit", type=click.IntRange(min=0), default=400, show_default=True,
              help="Images of the test split (else validation) in the Fig. 2 check; 0: all.")
@click.option("--allow-weak", is_flag=True,
              help="Exit 0 even when the classifier's validation AUC interval includes 0.5.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every stage.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default="auto", show_default=True,
              help="tf.distribute strategy: auto = mirrored over several GPUs, else one device.")
@click.option("--resume", is_flag=True, help="Go on with the run in --out: finished stages are skipped, the "
                                              "interrupted one goes on from its last finished epoch.")
def train_all(data, out, init_from_shipped, size, alpha, pooling, backbone, pretrain_epochs, epochs, lr, patience,
              batch_size, inpainter_epochs, inpainter_finetune_epochs, finetune_epochs, finetune_lr,
              infill_probability, gamma, film_tone, check_runs, check_limit, allow_weak, seed, strategy,
              resume) -> None:
    """Train a classifier and an inpainter for a data set, check them and write a model card.

    Stages: the classifier (patch pre-training, then whole images), the inpainter on healthy
    images, the classifier fine-tuned with in-fill, the Fig. 2 inpainter check, the classifier's
    AUC with a 95 % interval on the validation and test splits, and OUT/README.md. Exit status 3
    when the classifier is weak (its validation AUC interval includes 0.5) unless --allow-weak.
    """
    from tfsal.models.card import weak_warning
    from tfsal.recipes.train_all import RecipeSettings
    from tfsal.recipes.train_all import train_all as run

    try:
        settings = RecipeSettings(
            size=size, init_from_shipped=init_from_shipped, backbone=backbone, alpha=alpha, pooling=pooling,
            film_tone=film_tone, pretrain_epochs=pretrain_epochs, epochs=epochs, lr=lr,
            patience=patience, batch_size=batch_size, inpainter_epochs=inpainter_epochs,
            inpainter_finetune_epochs=inpainter_finetune_epochs, finetune_epochs=finetune_epochs,
            finetune_lr=finetune_lr, infill_probability=infill_probability, gamma=gamma, check_runs=check_runs,
            check_limit=check_limit or None, seed=seed, strategy=strategy)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    card = run(data, out, settings, resume=resume, progress=True, report=lambda line: click.echo(line, err=True))
    for split, m in card["metrics"].items():
        low, high = m["roc_auc_interval"]
        click.echo(f"{split}: ROC AUC {m['roc_auc']:.4f} (95 % interval {low:.3f}-{high:.3f}), "
                   f"sensitivity {m['sensitivity']:.3f}, specificity {m['specificity']:.3f}")
    click.echo(f"model card: {out / 'README.md'}")
    warning = weak_warning(card)
    if warning:
        click.secho(f"WARNING: {warning}", fg="red", err=True)
        if not allow_weak:
            raise SystemExit(WEAK_EXIT)
