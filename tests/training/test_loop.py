"""The training loop: it learns, it is deterministic, it validates its configuration, stages and schedules."""

from __future__ import annotations

import math

import pytest
import torch

from transferkit.exceptions import ConfigError
from transferkit.training import Callback, EarlyStopping, Stage, Trainer, TrainingDivergedError

from .toy import ToyTask, toy_batches


def test_the_model_learns() -> None:
    task = ToyTask()
    history = Trainer(seed=0).fit(task, toy_batches(), toy_batches(48, seed=1, shuffle=False),
                                  [Stage("train", 15, 0.05)])
    assert history[-1]["train_loss"] < 0.6 * history[0]["train_loss"]
    assert history[-1]["val_acc"] >= 0.9
    assert [e["epoch"] for e in history] == list(range(1, 16))
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "time_s", "stage", "stage_name"} <= set(history[0])


def test_same_seed_same_weights_and_the_callers_rng_is_untouched() -> None:
    def run(seed: int) -> list[torch.Tensor]:
        task = ToyTask()
        Trainer(seed=seed).fit(task, toy_batches(), None, [Stage("a", 3, 0.05)])
        return [p.detach().clone() for p in task.model.parameters()]

    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, b, c = run(0), run(0), run(1)
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))  # other batch order and dropout


def test_two_stages_freeze_then_unfreeze_with_a_lower_rate() -> None:
    task = ToyTask()
    base_before = task.model[0].weight.detach().clone()
    seen: list[tuple[int, bool, float]] = []

    class Spy(Callback):
        def on_epoch_end(self, trainer: Trainer, logs: dict) -> None:
            seen.append((trainer.stage_index, not torch.equal(task.model[0].weight, base_before), logs["lr"]))

    stages = [Stage("head", 2, 0.05, schedule="constant"), Stage("fine-tune", 2, 0.005, schedule="constant")]
    Trainer([task.freeze([0, 1]), Spy()], seed=0).fit(task, toy_batches(), None, stages)
    assert seen == [(0, False, 0.05), (0, False, 0.05), (1, True, 0.005), (1, True, 0.005)]


def test_gradual_unfreezing_adds_parameter_groups_and_keeps_optimizer_state() -> None:
    task = ToyTask()
    # 3 "blocks": base Linear and the head is separate; add a middle block by splitting the head's params
    task.blocks = [("base", task.model[0])]
    sizes = []

    class Spy(Callback):
        order = 60

        def on_epoch_end(self, trainer: Trainer, logs: dict) -> None:
            sizes.append(sum(len(g["params"]) for g in trainer.optimizer.param_groups))

    Trainer([task.freeze([0, 1], gradual=True), Spy()], seed=0).fit(
        task, toy_batches(), None, [Stage("head", 1, 0.05), Stage("ft", 2, 0.01)])
    assert sizes == [2, 4, 4]


def test_schedules() -> None:
    s = Stage("s", 1, 1.0, warmup=0.2, schedule="cosine", end_factor=0.01)
    factors = [s.lr_factor(i, 10) for i in range(10)]
    assert factors[0] < factors[1] < factors[2] == pytest.approx(1.0)
    assert factors[-1] == pytest.approx(0.01)
    assert all(a >= b for a, b in zip(factors[2:], factors[3:], strict=False))
    e = Stage("e", 1, 1e-6, schedule="exponential", end_factor=1e6, steps=7)
    assert [round(math.log10(e.lr * e.lr_factor(i, 99)), 6) for i in range(7)] == [-6, -5, -4, -3, -2, -1, 0]


@pytest.mark.parametrize(("stage", "message"), [
    (Stage("s", -1, 0.1), r"stage 's': epochs=-1 is not allowed; expected an integer >= 0"),
    (Stage("s", 1, 0.0), r"stage 's': lr=0.0 is not allowed; expected a positive number"),
    (Stage("s", 1, float("nan")), r"lr=nan is not allowed"),
    (Stage("s", 1, 0.1, warmup=1.5), r"warmup=1.5 is not allowed; expected a fraction in \[0, 1\)"),
    (Stage("s", 1, 0.1, schedule="linear"), r"schedule='linear' is not allowed; expected one of 'cosine', 'constant', 'exponential', 'inverse'"),
])
def test_bad_configuration_fails_before_the_first_batch(stage: Stage, message: str) -> None:
    task = ToyTask()
    before = [p.detach().clone() for p in task.model.parameters()]
    with pytest.raises(ConfigError, match=message) as info:
        Trainer(seed=0).fit(task, toy_batches(), None, [Stage("ok", 1, 0.1), stage])
    assert "\n" not in str(info.value)
    assert all(torch.equal(a, b) for a, b in zip(before, task.model.parameters(), strict=True))


def test_other_configuration_errors() -> None:
    task = ToyTask()
    with pytest.raises(ConfigError, match="no training stages"):
        Trainer().fit(task, toy_batches(), None, [])
    with pytest.raises(ConfigError, match="stage 'head' has no trainable parameters; unfreeze some blocks"):
        task.model.requires_grad_(False)
        Trainer().fit(task, toy_batches(), None, [Stage("head", 1, 0.1)])
    with pytest.raises(ConfigError, match="on_divergence='ignore' is not allowed"):
        Trainer(on_divergence="ignore")
    with pytest.raises(ConfigError, match="cannot unfreeze 3 blocks: the base has 1 \\(base\\)"):
        ToyTask().freeze([0, 3])


def test_divergence_is_a_one_line_error_naming_the_learning_rate() -> None:
    class Nan(ToyTask):
        def training_step(self, batch):  # type: ignore[no-untyped-def]
            out = super().training_step(batch)
            out.loss = out.loss * float("nan")
            return out

    with pytest.raises(TrainingDivergedError, match=r"training diverged in stage 'x', epoch 1 .*lower the learning rate \(lr=0.1 now\)"):
        Trainer().fit(Nan(), toy_batches(), None, [Stage("x", 1, 0.1)])


class _FakeTrainer:
    def __init__(self, model: torch.nn.Module) -> None:
        self.task = type("T", (), {"model": model})()
        self.stage_index = 0
        self.stop_stage = False
        self.stage = Stage("s", 10, 0.1)


def test_early_stopping_stops_and_restores_the_best_epoch() -> None:
    model = torch.nn.Linear(2, 1)
    trainer = _FakeTrainer(model)
    es = EarlyStopping("val_loss", "min", patience=2)
    es.on_stage_start(trainer)  # type: ignore[arg-type]
    weights = {}
    for epoch, loss in enumerate([1.0, 0.8, 0.85, 0.9, 0.7], start=1):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        weights[epoch] = model.weight.detach().clone()
        logs = {"epoch": epoch, "val_loss": loss}
        es.on_epoch_end(trainer, logs)  # type: ignore[arg-type]
        if trainer.stop_stage:
            break
    assert epoch == 4 and logs.get("stopped_early") is True
    es.on_stage_end(trainer)  # type: ignore[arg-type]
    assert torch.equal(model.weight, weights[2]) and es.best_epochs == {"s": 2}


class _RecordWeights(Callback):
    """The model's weights after every optimiser step (order 44: just before WeightAverage reads them)."""

    order = 44

    def __init__(self) -> None:
        self.steps: list[dict[str, torch.Tensor]] = []

    def on_batch_end(self, trainer: Trainer, output) -> None:  # type: ignore[no-untyped-def]
        self.steps.append({k: v.detach().clone() for k, v in trainer.task.model.state_dict().items()})


def test_weight_average_is_the_warmed_up_ema_of_the_steps_and_replaces_the_weights() -> None:
    from transferkit.training import WeightAverage

    task, record = ToyTask(), _RecordWeights()
    Trainer([record, WeightAverage(0.9)], seed=0).fit(task, toy_batches(), None, [Stage("a", 2, 0.05)])
    expected = {k: v.clone() for k, v in record.steps[0].items()}
    for k_step, weights in enumerate(record.steps[1:], start=1):
        d = min(0.9, (1 + k_step) / (10 + k_step))
        for k in expected:
            expected[k] = d * expected[k] + (1 - d) * weights[k]
    final = task.model.state_dict()
    assert all(torch.allclose(final[k], expected[k], atol=1e-6) for k in expected)
    assert not torch.equal(final["3.weight"], record.steps[-1]["3.weight"])  # not the last raw weights
    with pytest.raises(ConfigError, match="decay=1.0 is not allowed"):
        WeightAverage(1.0)


def test_weight_average_validates_the_average_and_trains_on_from_the_raw_weights() -> None:
    from transferkit.training import WeightAverage

    class Spy(Callback):
        order = 46  # after WeightAverage has put the raw weights back

        def __init__(self) -> None:
            self.after: list[torch.Tensor] = []

        def on_epoch_end(self, trainer: Trainer, logs) -> None:  # type: ignore[no-untyped-def]
            self.after.append(trainer.task.model[3].weight.detach().clone())

    task, record, spy, average = ToyTask(), _RecordWeights(), Spy(), WeightAverage(0.9, stages=["b"])
    stages = [Stage("a", 1, 0.05), Stage("b", 2, 0.05)]
    Trainer([record, average, spy, EarlyStopping("val_loss", patience=5)], seed=0).fit(
        task, toy_batches(), toy_batches(32, seed=1, shuffle=False), stages)
    per_epoch = len(record.steps) // 3
    # after each epoch's validation the raw weights are back: training continues from them
    for epoch in range(3):
        assert torch.equal(spy.after[epoch], record.steps[(epoch + 1) * per_epoch - 1]["3.weight"])
    # stage "a" is not averaged; in stage "b" EarlyStopping kept an average, not a raw step
    final = task.model[3].weight
    assert not any(torch.equal(final, s["3.weight"]) for s in record.steps[per_epoch:])
    assert average.updates == 2 * per_epoch


def test_sgd_option_trains_and_is_deterministic_with_a_seed() -> None:
    def run(seed: int) -> tuple[list[dict], list[torch.Tensor]]:
        task = ToyTask()
        history = Trainer(seed=seed, optimizer="sgd", momentum=0.9, nesterov=True).fit(
            task, toy_batches(), toy_batches(48, seed=1, shuffle=False), [Stage("sgd", 15, 0.05, schedule="inverse")])
        return history, [p.detach().clone() for p in task.model.parameters()]

    history, a = run(0)
    assert history[-1]["train_loss"] < 0.6 * history[0]["train_loss"] and history[-1]["val_acc"] >= 0.9
    _, b = run(0)
    _, c = run(1)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))

    seen: list[torch.optim.Optimizer] = []

    class Spy(Callback):
        def on_epoch_end(self, trainer: Trainer, logs: dict) -> None:
            seen.append(trainer.optimizer)

    Trainer([Spy()], seed=0, optimizer="sgd").fit(ToyTask(), toy_batches(), None, [Stage("s", 1, 0.05)])
    opt = seen[0]
    assert isinstance(opt, torch.optim.SGD)
    assert opt.defaults["momentum"] == 0.9 and opt.defaults["nesterov"] is True
    with pytest.raises(ConfigError, match="optimizer='adam'"):
        Trainer(optimizer="adam")


def test_inverse_schedule_is_dann_annealing() -> None:
    s = Stage("s", 1, 0.01, schedule="inverse")
    factors = [s.lr_factor(i, 11) for i in range(11)]
    assert factors[0] == 1.0
    assert factors[5] == pytest.approx((1 + 5.0) ** -0.75)
    assert factors[-1] == pytest.approx(11.0 ** -0.75)
    assert all(a > b for a, b in zip(factors, factors[1:], strict=False))
