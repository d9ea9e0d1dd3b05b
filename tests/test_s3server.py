"""Tests of tests/s3server.py itself, with boto3 and raw HTTP: the moto server, and every mode
of the fault-injecting proxy."""
import http.client
import os
import socket
import time

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from s3server import FaultProxy, S3Server, boto3_client


def status_and_code(exc_info):
    r = exc_info.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def test_bucket_put_get_list_delete(s3):
    assert s3.bucket in [b["Name"] for b in s3.server.s3.list_buckets()["Buckets"]]
    assert s3.list_keys() == []
    s3.put("b/2", b"two")
    s3.put("a/1", b"one")
    s3.put("b/1", "uno")
    assert s3.list_keys() == ["a/1", "b/1", "b/2"]
    assert s3.list_keys("b/") == ["b/1", "b/2"]
    assert s3.get("b/1") == b"uno"
    assert s3.exists("a/1") and not s3.exists("a/2")
    s3.delete("a/1")
    assert s3.list_keys() == ["b/1", "b/2"]
    assert s3.endpoint == f"http://127.0.0.1:{s3.server.port}"
    assert s3.url("x/y") == f"s3://{s3.bucket}/x/y"


def test_each_test_gets_a_new_bucket(s3, s3_server):
    assert s3.server is s3_server
    assert s3.list_keys() == []


def test_settings_sql(s3):
    port = s3.server.port
    assert s3.settings_sql() == (
        f"SET snapshot_s3_endpoint='http://127.0.0.1:{port}'; SET snapshot_s3_region='us-east-1'; "
        "SET snapshot_s3_url_style='path'; SET snapshot_s3_use_ssl=false; "
        "SET snapshot_s3_access_key_id='testing'; SET snapshot_s3_secret_access_key='testing';"
    )
    p = s3.proxy()
    assert s3.settings_statements(endpoint=p.endpoint, scope="GLOBAL")[0] == (
        f"SET GLOBAL snapshot_s3_endpoint='http://127.0.0.1:{p.port}'"
    )


def test_put_if_none_match_is_honoured(s3):
    c = s3.server.s3
    c.put_object(Bucket=s3.bucket, Key="k", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=s3.bucket, Key="k", Body=b"second", IfNoneMatch="*")
    assert status_and_code(e) == (412, "PreconditionFailed")
    assert s3.get("k") == b"first"


def test_stop_refuses_connections_and_start_reuses_the_port(s3_own):
    server = s3_own.server
    port = server.port
    s3_own.put("k", b"v")
    server.stop()
    assert not server.is_running()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with pytest.raises(BotoCoreError):  # EndpointConnectionError
        server.client().list_buckets()
    server.start()
    assert server.port == port
    # moto keeps its state in memory only: the bucket is gone
    assert [b["Name"] for b in server.s3.list_buckets()["Buckets"]] == []


def test_pass_forwards_and_keeps_connections_alive(s3, s3_proxy):
    c = boto3_client(s3_proxy.endpoint)
    body = os.urandom(300_000)
    c.put_object(Bucket=s3.bucket, Key="big", Body=body)
    assert c.get_object(Bucket=s3.bucket, Key="big")["Body"].read() == body
    assert c.head_object(Bucket=s3.bucket, Key="big")["ContentLength"] == len(body)
    assert [o["Key"] for o in c.list_objects_v2(Bucket=s3.bucket)["Contents"]] == ["big"]
    c.delete_object(Bucket=s3.bucket, Key="big")
    assert s3_proxy.requests == 5 and s3_proxy.faults == 0
    assert [h[2] for h in s3_proxy.history] == ["pass"] * 5

    # raw HTTP/1.1: several requests on one connection, and the mode applies from the next
    # request on that same connection
    conn = http.client.HTTPConnection("127.0.0.1", s3_proxy.port, timeout=10)
    for _ in range(3):
        conn.request("GET", f"/{s3.bucket}?list-type=2")
        r = conn.getresponse()
        assert r.status == 200 and b"ListBucketResult" in r.read()
    local = conn.sock.getsockname()
    s3_proxy.set_mode("503")
    conn.request("GET", f"/{s3.bucket}?list-type=2")
    assert conn.sock.getsockname() == local  # still the first connection
    r = conn.getresponse()
    assert r.status == 503 and b"<Code>SlowDown</Code>" in r.read()
    conn.close()


def test_chunked_request_bodies(s3, s3_proxy):
    conn = http.client.HTTPConnection("127.0.0.1", s3_proxy.port, timeout=10)
    conn.request("PUT", f"/{s3.bucket}/chunked", body=iter([b"hello ", b"chunked ", b"world"]),
                 encode_chunked=True)
    r = conn.getresponse()
    r.read()
    assert r.status == 200
    assert s3.get("chunked") == b"hello chunked world"
    s3_proxy.set_mode("403")
    conn.request("PUT", f"/{s3.bucket}/chunked2", body=iter([b"x" * 1000] * 5), encode_chunked=True)
    r = conn.getresponse()
    assert r.status == 403 and b"AccessDenied" in r.read()
    conn.close()
    assert not s3.exists("chunked2")


def test_503(s3, s3_proxy):
    s3_proxy.set_mode("503")
    c = boto3_client(s3_proxy.endpoint)
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=s3.bucket, Key="k", Body=b"x" * 10000)
    assert status_and_code(e) == (503, "SlowDown")
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket=s3.bucket, Key="k")
    assert status_and_code(e) == (503, "SlowDown")
    with pytest.raises(ClientError) as e:
        c.head_object(Bucket=s3.bucket, Key="k")
    assert status_and_code(e)[0] == 503
    assert s3_proxy.requests == 3 and s3_proxy.faults == 3
    assert not s3.exists("k")


def test_503_then_pass(s3, s3_proxy):
    s3_proxy.set_mode("503_then_pass", 2)
    c = boto3_client(s3_proxy.endpoint)
    for _ in range(2):
        with pytest.raises(ClientError) as e:
            c.put_object(Bucket=s3.bucket, Key="k", Body=b"v")
        assert status_and_code(e) == (503, "SlowDown")
    c.put_object(Bucket=s3.bucket, Key="k", Body=b"v")
    assert s3_proxy.mode == ("pass", None, None)
    assert [h[2] for h in s3_proxy.history] == ["503", "503", "pass"]
    assert s3.get("k") == b"v"
    # a client that retries gets through on its own
    s3_proxy.set_mode("503_then_pass", 1)
    assert boto3_client(s3_proxy.endpoint, retries=3).get_object(Bucket=s3.bucket, Key="k")["Body"].read() == b"v"
    assert s3_proxy.faults == 3


def test_403(s3, s3_proxy):
    s3.put("k", b"v")
    s3_proxy.set_mode("403")
    c = boto3_client(s3_proxy.endpoint)
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket=s3.bucket, Key="k")
    assert status_and_code(e) == (403, "AccessDenied")
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=s3.bucket, Key="k2", Body=b"v")
    assert status_and_code(e) == (403, "AccessDenied")
    assert s3_proxy.faults == 2


def test_drop(s3, s3_proxy):
    s3.put("k", b"v")
    s3_proxy.set_mode("drop")
    c = boto3_client(s3_proxy.endpoint)
    with pytest.raises(BotoCoreError):  # ConnectionClosedError
        c.get_object(Bucket=s3.bucket, Key="k")
    with pytest.raises(BotoCoreError):
        c.put_object(Bucket=s3.bucket, Key="k2", Body=b"v" * 5000)
    assert s3_proxy.requests == 2 and s3_proxy.faults == 2
    assert not s3.exists("k2")
    s3_proxy.set_mode("drop", times=1)
    with pytest.raises(BotoCoreError):
        c.get_object(Bucket=s3.bucket, Key="k")
    assert c.get_object(Bucket=s3.bucket, Key="k")["Body"].read() == b"v"


def test_drop_after_bytes_cuts_a_download(s3, s3_proxy):
    size = 2_000_000
    body = os.urandom(size)
    s3.put("big", body)
    s3_proxy.set_mode("drop_after_bytes", 100_000)
    c = boto3_client(s3_proxy.endpoint)
    got = b""
    with pytest.raises(Exception):  # botocore's ResponseStreamingError / urllib3's ProtocolError
        stream = c.get_object(Bucket=s3.bucket, Key="big")["Body"]
        while True:
            chunk = stream.read(65536)
            if not chunk:
                break
            got += chunk
    assert len(got) <= 100_000
    assert got == body[: len(got)]
    assert s3_proxy.history[-1][2] == "cut"
    # small bodies pass under the same mode
    s3.put("small", b"s" * 1000)
    assert c.get_object(Bucket=s3.bucket, Key="small")["Body"].read() == b"s" * 1000
    # and the whole object passes once the mode is back to pass
    s3_proxy.set_mode("pass")
    assert c.get_object(Bucket=s3.bucket, Key="big")["Body"].read() == body


def test_drop_after_bytes_cuts_an_upload(s3, s3_proxy):
    s3_proxy.set_mode("drop_after_bytes", 50_000, times=1)
    c = boto3_client(s3_proxy.endpoint)
    with pytest.raises(BotoCoreError):
        c.put_object(Bucket=s3.bucket, Key="up", Body=os.urandom(1_000_000))
    assert s3_proxy.faults == 1 and s3_proxy.history[-1][2] == "cut"
    time.sleep(0.2)
    assert not s3.exists("up")
    # times=1: the next upload passes whole
    body = os.urandom(1_000_000)
    c.put_object(Bucket=s3.bucket, Key="up", Body=body)
    assert s3.get("up") == body


def test_upstream_down_resets_the_client(s3_own):
    p = s3_own.proxy()
    s3_own.server.stop()
    with pytest.raises(BotoCoreError):
        boto3_client(p.endpoint).list_buckets()
    assert p.history[-1][2] == "unreachable"


def test_proxy_stop_refuses_and_start_reuses_the_port(s3):
    p = FaultProxy(s3.server.port)
    port = p.port
    c = boto3_client(p.endpoint)
    c.list_buckets()
    p.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    p.start()
    assert p.port == port
    c.list_buckets()
    p.stop()


def test_server_as_context_manager():
    with S3Server() as server:
        server.create_bucket("plain")
        server.put("plain", "k", b"v")
        assert server.list_keys("plain") == ["k"]
    assert not server.is_running()
