"""A single-node Apache Kafka broker (KRaft, combined mode) from Maven Central jars.

Used by `make kafka-up` / `make kafka-down`, `make demo` and the pytest broker fixture on
machines without a Docker engine. Standard library only, so it runs before `pip install`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIBS = HERE / ".cache" / "libs"
DEFAULT_STATE = HERE / ".cache" / "broker"

LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""


@dataclass(frozen=True)
class Broker:
    """Where one broker keeps its files and which ports it listens on."""

    state: Path
    port: int
    controller_port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.state / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.state / "broker.log"


def fetch_jars() -> None:
    """Download the broker jars once; later calls are no-ops."""
    if any(LIBS.glob("kafka_2.13-*.jar")):
        return
    subprocess.run(
        ["mvn", "-B", "-q", "-f", str(HERE / "pom.xml"), "dependency:copy-dependencies"],
        check=True,
    )


def _cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _properties(b: Broker) -> str:
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{b.controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{b.port},CONTROLLER://127.0.0.1:{b.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{b.port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={b.state / 'data'}",
            "num.partitions=1",
            "auto.create.topics.enable=false",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=8",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=8",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "log.flush.interval.messages=9223372036854775807",
            "",
        ]
    )


def _java(main: str, *args: str, log: Path | None = None) -> list[str]:
    opts = [
        "-Xms256m",
        "-Xmx768m",
        "-XX:+UseG1GC",
        "-XX:TieredStopAtLevel=1",
        "-Djava.awt.headless=true",
    ]
    if log is not None:
        opts.append(f"-Dlog4j2.configurationFile={log}")
    return ["java", *opts, "-cp", f"{LIBS}/*", main, *args]


def running_pid(b: Broker) -> int | None:
    """The pid of this state folder's broker if that process is alive."""
    try:
        pid = int(b.pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _answers(b: Broker) -> bool:
    """True once the broker serves metadata (confluent-kafka if present, else a TCP probe)."""
    try:
        with socket.create_connection(("127.0.0.1", b.port), timeout=1):
            pass
    except OSError:
        return False
    try:
        from confluent_kafka.admin import AdminClient
    except ImportError:
        return True
    try:
        admin = AdminClient({"bootstrap.servers": b.bootstrap, "log_level": 0})
        md = admin.list_topics(timeout=2)
        return bool(md.brokers)
    except Exception:
        return False


def up(b: Broker, timeout_s: float = 120.0) -> float:
    """Start the broker unless it runs already; return seconds until it answered."""
    started = time.monotonic()
    if running_pid(b) is not None and _answers(b):
        return 0.0
    fetch_jars()
    b.state.mkdir(parents=True, exist_ok=True)
    props = b.state / "server.properties"
    log4j = b.state / "log4j2.properties"
    props.write_text(_properties(b))
    log4j.write_text(LOG4J2.format(log=b.log_file))
    if not (b.state / "data" / "meta.properties").exists():
        subprocess.run(
            _java("kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(props), log=log4j),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    with open(b.log_file, "ab") as out:
        proc = subprocess.Popen(
            _java("kafka.Kafka", str(props), log=log4j),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    b.pid_file.write_text(str(proc.pid))
    deadline = started + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode}; see {b.log_file}")
        if _answers(b):
            return time.monotonic() - started
        time.sleep(0.3)
    down(b)
    raise TimeoutError(f"broker did not answer within {timeout_s:.0f}s; see {b.log_file}")


def down(b: Broker, timeout_s: float = 30.0) -> bool:
    """Stop the broker by its pid; SIGKILL after the timeout. True if one was running."""
    pid = running_pid(b)
    if pid is None:
        b.pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            break
        _reap(pid)
        time.sleep(0.2)
    else:
        os.kill(pid, signal.SIGKILL)
    _reap(pid)
    b.pid_file.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("action", choices=["up", "down", "status", "fetch"])
    p.add_argument("--state", type=Path, default=DEFAULT_STATE)
    p.add_argument("--port", type=int, default=9092)
    p.add_argument("--controller-port", type=int, default=9093)
    p.add_argument("--wipe", action="store_true", help="with down: delete the broker's data")
    a = p.parse_args(argv)
    b = Broker(a.state, a.port, a.controller_port)
    if a.action == "fetch":
        fetch_jars()
    elif a.action == "up":
        was_running = running_pid(b) is not None
        took = up(b)
        state = "already running" if was_running else f"started in {took:.1f}s"
        print(f"kafka {state}: bootstrap {b.bootstrap} (logs {b.log_file})")
    elif a.action == "down":
        stopped = down(b)
        if a.wipe:
            shutil.rmtree(b.state, ignore_errors=True)
        print("kafka stopped" if stopped else "kafka was not running")
    else:
        pid = running_pid(b)
        print(f"kafka running, pid {pid}, bootstrap {b.bootstrap}" if pid else "kafka not running")
        return 0 if pid else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
