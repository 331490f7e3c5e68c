"""`assistant train`, `evaluate`, `index` and `train-generator`: building and measuring models."""

from __future__ import annotations

import argparse
from pathlib import Path

from assistant.cli.releases import release_built_part
from assistant.core.errors import ArtifactError
from assistant.core.settings import Settings
from assistant.datasets.loading import (
    load_dataset,
)


def intent_splits(args: argparse.Namespace, settings: Settings):
    """The demo dataset's splits, or those of the files given with --data."""
    from assistant.datasets.corpus import IntentFiles, dataset_splits, file_splits

    if args.data is None:
        return dataset_splits(load_dataset(settings.data_dir), settings)
    files = IntentFiles(args.data, args.validation, args.test, args.text_column, args.intent_column)
    return file_splits(files, settings)


def settings_for(args: argparse.Namespace, settings: Settings) -> Settings:
    """Apply the command's --models-dir and --out-of-scope-label to the settings."""
    update: dict[str, object] = {}
    if args.models_dir is not None:
        update["models_dir"] = args.models_dir
    if args.out_of_scope_label is not None:
        update["out_of_scope_label"] = args.out_of_scope_label
    return settings.model_copy(update=update)


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    settings = settings_for(args, settings)
    splits = intent_splits(args, settings)
    print(
        f"Training on {len(splits.train)} examples, validating on {len(splits.validation)}"
        + (f", testing on {len(splits.test)}" if splits.test else "")
    )
    try:
        if args.search:
            report = _search_and_publish(splits, settings, args.search)
        else:
            from assistant.intents.training import train_intent_classifier

            report = train_intent_classifier(
                splits.train, splits.validation, settings, splits.checksum, splits.test, args.fresh
            )
    except KeyboardInterrupt:
        print("\nTraining stopped. Give the same command again to resume from the last epoch.")
        return 130
    print(f"Saved intent model {report.version} to {report.path}")
    print(summarise_metrics(report.metrics))
    release_built_part(settings, "intent", report.version)
    return 0


def _search_and_publish(splits, settings: Settings, trials: int):
    import time

    from assistant.intents.search import search
    from assistant.intents.training import publish_fitted

    started = time.perf_counter()
    print(f"Searching hyperparameters: {trials} trials, scored on validation accuracy")
    fitted, history = search(splits.train, splits.validation, settings, splits.checksum, trials)
    best = max(history, key=lambda t: (t.validation_accuracy, t.validation_macro_f1))
    print(f"Best: trial {best.number}")
    extra = {"search": [trial.__dict__ for trial in history]}
    return publish_fitted(fitted, settings, splits.checksum, splits.test, started, extra)


def summarise_metrics(metrics: dict) -> str:
    """A few readable lines: accuracy, calibration and the fallback's effect."""
    lines = []
    for split in ("validation", "test"):
        figures = metrics.get(split)
        if not figures:
            continue
        line = f"{split}: accuracy {figures['accuracy']:.4f}, macro-F1 {figures['macro_f1']:.4f}"
        if "ece_before_calibration" in figures:
            line += (
                f", ECE {figures['ece_before_calibration']:.4f} -> "
                f"{figures['ece_after_calibration']:.4f} (T={figures['temperature']:.2f})"
            )
        lines.append(line)
        fallback = figures["with_fallback"]
        recall = fallback["out_of_scope_recall"]
        lines.append(
            f"  with fallback: in-scope accuracy {fallback['in_scope_accuracy']:.4f}, "
            f"out-of-scope recall {'n/a' if recall is None else f'{recall:.4f}'}, "
            f"answered {fallback['answered']:.4f}"
        )
    lines.append(
        f"epochs {metrics.get('epochs_run', 0):.0f}, "
        f"{metrics.get('training_seconds', 0) / 60:.1f} min"
    )
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.evaluation.measures import embedding_map, evaluate_classifier, evaluate_retrieval
    from assistant.evaluation.report import write_report
    from assistant.intents.classifier import BertIntentClassifier

    settings = settings_for(args, settings)
    runtime = "int8" if args.int8 else settings.encoder_runtime
    classifier = BertIntentClassifier.load(
        settings.intent_models_dir, settings.device, args.version, runtime=runtime
    )
    examples = _evaluation_examples(args, settings)
    evaluation = evaluate_classifier(classifier, examples, settings.out_of_scope_label)
    demo = args.data is None and args.test is None
    retriever = _retriever_if_built(settings) if demo else None
    if retriever is not None:
        evaluation["retrieval"] = evaluate_retrieval(retriever, examples)
    points = None if args.no_map else embedding_map(classifier, examples)
    directory = args.report or Path("reports") / classifier.version
    page = write_report(evaluation, directory, points)
    print(
        f"accuracy {evaluation['accuracy']:.4f}, macro-F1 {evaluation['macro_f1']:.4f}, "
        f"ECE {evaluation['calibration']['ece_before']:.4f} -> "
        f"{evaluation['calibration']['ece_after']:.4f} on {len(examples)} messages"
    )
    if "retrieval" in evaluation:
        figures = evaluation["retrieval"]
        print("retrieval: " + ", ".join(f"{k} {v:.4f}" for k, v in figures.items() if "@" in k))
    print(f"Report: {page} (and report.json, charts beside it)")
    return 0


def _evaluation_examples(args: argparse.Namespace, settings: Settings):
    """The --test file, else the --data file, else the demo data's test split."""
    from assistant.datasets.corpus import dataset_splits
    from assistant.datasets.loading import load_intent_examples

    path = args.test or args.data
    if path is None:
        return dataset_splits(load_dataset(settings.data_dir), settings).test
    return load_intent_examples(path, args.text_column, args.intent_column)


def _retriever_if_built(settings: Settings):
    from assistant.datasets.loading import qa_checksum
    from assistant.retrieval.index import load_index_version

    try:
        return load_index_version(
            settings, expected_source_checksum=qa_checksum(load_dataset(settings.data_dir))
        )
    except ArtifactError as error:
        print(f"(retrieval not evaluated: {error})")
        return None


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.lifecycle.build import build_index

    retriever = build_index(load_dataset(settings.data_dir), settings)
    where = "GPU" if retriever.on_gpu else "CPU"
    print(
        f"Indexed {len(retriever.rows)} Q&A pairs into {settings.qa_index_dir} (FAISS on {where})"
    )
    return 0


def cmd_train_generator(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.datasets.loading import qa_checksum
    from assistant.generation.training import train_generator
    from assistant.lifecycle.build import build_index, index_staleness, live_part
    from assistant.retrieval.index import load_index_version

    dataset = load_dataset(settings.data_dir)
    if index_staleness(dataset, settings):
        retriever = build_index(dataset, settings)
    else:
        retriever = load_index_version(settings, live_part(settings, "index"))
    report = train_generator(
        dataset.qa_pairs, settings, qa_checksum(dataset), retriever, fresh=args.fresh
    )
    metrics = report.metrics
    print(
        f"Answer generator {report.version} saved to {report.path}: "
        f"{metrics['parameters'] / 1e6:.1f}M parameters, held-out perplexity "
        f"{metrics['validation_perplexity']:.1f}, grounding threshold "
        f"{metrics['grounding_threshold']:.3f}, relevance threshold "
        f"{metrics['relevance_threshold']:.3f}, {metrics['training_seconds'] / 60:.1f} min"
    )
    check = metrics.get("int8_check")
    if check and check.get("tokens"):
        print(
            f"Its int8 form picks fp32's next token on {check['top_token_agreement']:.2%} of "
            f"{check['tokens']} held-out answer tokens (loss {check['int8_loss']:.3f} against "
            f"{check['fp32_loss']:.3f}); generator_int8 = true serves it"
        )
    release_built_part(settings, "generator", report.version)
    return 0
