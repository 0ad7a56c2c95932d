import threading

import numpy as np

from monitor.audio.ringbuffer import RingBuffer


def test_wraps_around_and_keeps_order():
    ring = RingBuffer(100, channels=2)
    out = []
    data = np.arange(1000, dtype=np.int16).reshape(-1, 2)
    for i in range(0, len(data), 30):
        assert ring.write(data[i : i + 30])
        out.append(ring.read(1000, timeout=0))
    assert np.array_equal(np.concatenate(out), data)


def test_overrun_drops_whole_blocks_and_counts_them():
    ring = RingBuffer(100)
    assert ring.write(np.ones(60, np.int16))
    assert not ring.write(np.ones(60, np.int16))  # does not fit: dropped, not partially written
    assert ring.dropped_blocks == 1 and ring.dropped_frames == 60
    assert ring.available == 60
    assert len(ring.read(1000, timeout=0)) == 60


def test_read_times_out_empty_and_returns_none_when_closed_and_drained():
    ring = RingBuffer(10)
    assert len(ring.read(5, timeout=0.01)) == 0
    ring.write(np.ones(3, np.int16))
    ring.close()
    assert len(ring.read(5, timeout=0.01)) == 3
    assert ring.read(5, timeout=0.01) is None


def test_write_wait_applies_backpressure_without_loss():
    ring = RingBuffer(64)
    data = np.arange(5000, dtype=np.int16)
    got = []

    def consume():
        while True:
            block = ring.read(17, timeout=1)
            if block is None:
                return
            got.append(block[:, 0])

    t = threading.Thread(target=consume)
    t.start()
    for i in range(0, len(data), 50):
        assert ring.write_wait(data[i : i + 50], timeout=5)
    ring.close()
    t.join(5)
    assert np.array_equal(np.concatenate(got), data)
    assert ring.dropped_blocks == 0
