"""Output downloads (§2.7, §3): auth by token or key, Range/206, 410, 422, content types."""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Callable

import httpx

from tests.e2e.simulator.conftest import Sim


def fetch(url: str, **kwargs: object) -> httpx.Response:
    return httpx.get(url, trust_env=False, timeout=30, **kwargs)  # type: ignore[arg-type]


def succeeded_image(sim: Sim, **body: object) -> dict:
    job = sim.client.post("/v1/images", json={"prompt": "x", **body}).json()
    done = sim.wait_terminal(job["id"])
    assert done["status"] == "succeeded"
    return done


def png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    kinds, position = [], 8
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        payload = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert zlib.crc32(kind + payload) == crc
        kinds.append(kind)
        position += 12 + length
    return kinds


def test_image_output_with_token(sim: Sim) -> None:
    done = succeeded_image(sim)
    response = fetch(done["output_urls"][0])
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert int(response.headers["content-length"]) == len(response.content)
    kinds = png_chunks(response.content)
    assert kinds[0] == b"IHDR" and b"IDAT" in kinds and kinds[-1] == b"IEND"
    truth = sim.job_truth(done["id"])["outputs"][0]
    assert truth["sha256"] == hashlib.sha256(response.content).hexdigest()
    assert truth["size"] == len(response.content)


def test_output_auth_options(sim: Sim) -> None:
    done = succeeded_image(sim)
    plain = done["output_urls"][0].split("?")[0]
    assert sim.client.get(plain).status_code == 200  # X-Api-Key instead of the token
    bearer = fetch(plain, headers={"Authorization": f"Bearer {sim.client.headers['x-api-key']}"})
    assert bearer.status_code == 200
    anonymous = fetch(plain)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "missing_api_key"
    forged = fetch(plain + "?token=0123456789abcdef")
    assert forged.status_code == 401 and forged.json()["error"]["type"] == "authentication"


def test_range_requests(sim: Sim) -> None:
    done = succeeded_image(sim)
    url = done["output_urls"][0]
    full = fetch(url).content
    size = len(full)
    cases = [
        ("bytes=0-99", 0, 99),
        (f"bytes=100-{size}", 100, size - 1),
        ("bytes=-50", size - 50, size - 1),
        (f"bytes={size - 1000}-", size - 1000, size - 1),
    ]
    for header, start, end in cases:
        response = fetch(url, headers={"Range": header})
        assert response.status_code == 206
        assert response.headers["content-range"] == f"bytes {start}-{end}/{size}"
        assert response.content == full[start : end + 1]
        assert int(response.headers["content-length"]) == end + 1 - start
    unsatisfiable = fetch(url, headers={"Range": f"bytes={size + 10}-"})
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["content-range"] == f"bytes */{size}"


def test_video_output(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(time_scale=1000, video_size=300_000)
    job = sim.client.post("/v1/videos", json={"prompt": "v"}).json()
    done = sim.wait_terminal(job["id"])
    response = fetch(done["output_video_url"])
    assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
    assert len(response.content) == 300_000
    assert response.content[4:8] == b"ftyp"
    part = fetch(done["output_video_url"], headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == response.content[1000:2000]
    assert sim.client.get(f"/v1/images/{job['id']}/output/0").status_code == 404


def test_expired_output_is_410(sim: Sim) -> None:
    done = succeeded_image(sim)
    sim.advance(86400 + 1)
    response = fetch(done["output_urls"][0])
    assert response.status_code == 410
    error = response.json()["error"]
    assert error["code"] == "output_expired" and error["type"] == "not_found"


def test_output_ttl_knob(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(output_ttl_s=600)
    done = succeeded_image(sim)
    assert fetch(done["output_urls"][0]).status_code == 200
    sim.advance(601)
    assert fetch(done["output_urls"][0]).status_code == 410
    assert sim.stats()["outputs"]["expired_served_410"] == 1


def test_terminal_without_output_is_422(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(failed_rate=1.0)
    job = sim.client.post("/v1/images", json={"prompt": "x"}).json()
    sim.wait_terminal(job["id"])
    response = sim.client.get(f"/v1/images/{job['id']}/output/0")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "output_not_available"
    assert response.json()["error"]["type"] == "invalid_request"


def test_output_index_out_of_range(sim: Sim) -> None:
    done = succeeded_image(sim, count=2)
    assert sim.client.get(f"/v1/images/{done['id']}/output/1").status_code == 200
    assert sim.client.get(f"/v1/images/{done['id']}/output/2").status_code == 404


def test_redirect_mode(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(redirect_outputs=True)
    done = succeeded_image(sim)
    first = fetch(done["output_urls"][0])
    assert first.status_code == 302
    location = first.headers["location"]
    assert location.startswith("http://127.0.0.1:") and location != done["output_urls"][0]
    followed = fetch(done["output_urls"][0], follow_redirects=True)
    assert followed.status_code == 200 and followed.headers["content-type"] == "image/png"
    assert (
        hashlib.sha256(followed.content).hexdigest()
        == sim.job_truth(done["id"])["outputs"][0]["sha256"]
    )
    ranged = fetch(location, headers={"Range": "bytes=0-7"})
    assert ranged.status_code == 206 and ranged.content == b"\x89PNG\r\n\x1a\n"
    assert sim.stats()["faults"]["redirect"] == 2
