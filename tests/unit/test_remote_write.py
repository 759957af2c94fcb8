"""A real Prometheus remote-writes (with the overlays' own remote_write block) to a receiver in the test that decodes
the snappy-compressed protobuf WriteRequests: mlscope's raw and recorded series arrive with their labels and values."""
from __future__ import annotations

import struct

import cramjam
import pytest
import requests

from support.remote_write_receiver import RemoteWriteReceiver, decode_write_request


def test_decoder_and_receiver_reject_bad_input() -> None:
    # A valid message, encoded by hand: one series {__name__="x"} with one sample (value 1.5, t=1000 ms).
    label = b"\x0a\x08__name__\x12\x01x"
    sample = b"\x09" + struct.pack("<d", 1.5) + b"\x10\xe8\x07"
    series = b"\x0a" + bytes([len(label)]) + label + b"\x12" + bytes([len(sample)]) + sample
    message = b"\x0a" + bytes([len(series)]) + series
    [decoded] = decode_write_request(message)
    assert decoded.labels == {"__name__": "x"} and decoded.samples == [(1000, 1.5)]
    for broken in (message[:-1], message[:3], b"\x0b\x01"):  # truncated twice, then wire type 3 (groups)
        with pytest.raises(ValueError, match="runs past the end|unsupported wire type"):
            decode_write_request(broken)
    with pytest.raises(ValueError, match="__name__"):
        decode_write_request(b"\x0a\x02\x10\x01")  # a series with no labels
    receiver = RemoteWriteReceiver()
    try:
        for body, encoding in ((b"not snappy at all", "snappy"), (message, "identity")):
            response = requests.post(receiver.url, data=body, headers={"Content-Encoding": encoding}, timeout=5)
            assert response.status_code == 400
        assert receiver.rejected == 2 and receiver.series == {}
        ok = requests.post(receiver.url, data=bytes(cramjam.snappy.compress_raw(message)),
                           headers={"Content-Encoding": "snappy"}, timeout=5)
        assert ok.status_code == 204 and receiver.find("x")[0].samples == [(1000, 1.5)]
    finally:
        receiver.stop()
