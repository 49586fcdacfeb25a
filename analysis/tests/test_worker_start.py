"""A GPU worker warms its analyzer up as it starts; other workers do not."""

from types import SimpleNamespace

import pytest

from analysis import worker_start


class FakeQueues(dict):
    def __init__(self, names, consume_from):
        super().__init__({name: object() for name in names})
        self.consume_from = {name: object() for name in consume_from}


def fake_worker(consume, pool="threads"):
    return SimpleNamespace(app=SimpleNamespace(amqp=SimpleNamespace(queues=FakeQueues(["celery", "gpu"], consume))),
                           pool_cls=pool)


@pytest.fixture
def started(monkeypatch):
    calls = []
    monkeypatch.setattr(worker_start, "start_warm_up", lambda: calls.append("warm-up"))
    monkeypatch.setattr(worker_start, "_warm_up_here", False)
    return calls


def test_a_gpu_worker_with_a_thread_pool_warms_up_at_once(started, settings):
    settings.ANALYZER_WARM_UP = True
    worker_start.on_worker_init(sender=fake_worker(["celery", "gpu"]))
    assert started == ["warm-up"]


@pytest.mark.parametrize("pool", ["prefork", "celery.concurrency.solo:TaskPool"])
def test_a_forking_gpu_worker_warms_up_in_the_process_that_runs_tasks(started, settings, pool):
    settings.ANALYZER_WARM_UP = True
    worker_start.on_worker_init(sender=fake_worker(["gpu"], pool=pool))
    assert started == [], "never in a prefork parent"
    worker_start.on_worker_process_init()
    assert started == ["warm-up"]


def test_a_cpu_worker_does_not_load_the_model(started, settings):
    settings.ANALYZER_WARM_UP = True
    worker_start.on_worker_init(sender=fake_worker(["celery"]))
    worker_start.on_worker_process_init()
    assert started == []


def test_warm_up_can_be_switched_off(started, settings):
    settings.ANALYZER_WARM_UP = False
    worker_start.on_worker_init(sender=fake_worker(["gpu"]))
    assert started == []


def test_the_warm_up_thread_loads_the_configured_analyzer(monkeypatch):
    loaded = []
    monkeypatch.setattr("analysis.analyzer.configured_analyzer", lambda: loaded.append(True))
    worker_start.start_warm_up().join(10)
    assert loaded == [True]


def test_a_failed_warm_up_is_logged_not_fatal(monkeypatch, caplog):
    def broken():
        raise RuntimeError("no GPU memory")

    monkeypatch.setattr("analysis.analyzer.configured_analyzer", broken)
    worker_start.start_warm_up().join(10)
    assert "warm-up at worker start failed" in caplog.text


def test_a_starting_gpu_worker_queues_the_scheduling_loop_once():
    # Frames left waiting, or claimed by a worker that died, are picked up when a GPU
    # worker starts, not only when the next frame arrives (issue 13).
    from analysis.task_names import SCHEDULE

    queued = []
    for consume in (["gpu"], ["celery"]):
        worker = fake_worker(consume)
        worker.app.tasks = {SCHEDULE: SimpleNamespace(delay=lambda: queued.append(tuple(consume)))}
        worker_start.on_worker_ready(sender=worker)
    assert queued == [("gpu",)]
