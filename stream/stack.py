"""The local stack: a real Apache Kafka broker (KRaft, one node) and Redis, run from the project's own files.

The broker's jars come from Maven Central through ``deploy/kafka/pom.xml``; config,
data, logs and pid files live under the run folder. Every failure a user can meet
(no Java, a port taken, a stale run folder) raises :class:`StackError` whose message
says the cause and the fix in one line.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from confluent_kafka.admin import AdminClient

from stream.settings import PROJECT_ROOT, StackSettings

POM = PROJECT_ROOT / "deploy" / "kafka" / "pom.xml"
READY_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 60.0


class StackError(Exception):
    """The stack cannot start or stop; the message says why and what to do."""


def kafka_version() -> str:
    text = POM.read_text()
    return text.split("<kafka.version>", 1)[1].split("</kafka.version>", 1)[0]


def _port_owner(port: int) -> str:
    """Name the process listening on a port, if ``ss`` can tell."""
    try:
        out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    if 'users:((' in out:
        name, pid = out.split('users:(("', 1)[1].split('"', 1)[0], out.split("pid=", 1)[1].split(",", 1)[0]
        return f" by {name} (pid {pid})"
    return ""


def ensure_port_free(port: int, what: str, env_var: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise StackError(
                f"port {port} for {what} is already taken{_port_owner(port)}: stop that process, "
                f"or choose another port with {env_var}=<port>"
            ) from None


def is_running(pid: int, marker: str) -> bool:
    """True if ``pid`` runs and is our process (a reused pid of another program is not ours)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return marker.encode() in cmdline and state != "Z"


@dataclass
class ManagedProcess:
    """A server process started detached, tracked by a pid file in its run folder."""

    name: str
    folder: Path
    marker: str  # a string on its command line that tells it is ours

    @property
    def pid_file(self) -> Path:
        return self.folder / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.folder / "logs" / f"{self.name}.out"

    def running_pid(self) -> int | None:
        """The pid of our running process; a pid file left by a dead one is removed."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if is_running(pid, self.marker):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def spawn(self, argv: list[str], env: dict[str, str] | None = None) -> int:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env
            )
        self.pid_file.write_text(str(process.pid))
        return process.pid

    def exited_with(self, pid: int) -> int | None:
        """The exit status if our child has exited, else None (reaps it so it leaves no zombie)."""
        try:
            waited, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not our child (started by an earlier command): look at /proc
            return None if is_running(pid, self.marker) else -1
        return os.waitstatus_to_exitcode(status) if waited else None

    def stop(self) -> bool:
        """SIGTERM, wait, then SIGKILL. Returns whether anything was running."""
        pid = self.running_pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.exited_with(pid) is not None or not is_running(pid, self.marker):
                break
            time.sleep(0.2)
        else:
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
            self.exited_with(pid)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log_file.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return "(no log)"


class KafkaBroker:
    """A single-node KRaft broker+controller on 127.0.0.1, from Maven Central jars."""

    def __init__(self, settings: StackSettings):
        self.settings = settings
        self.folder = settings.run_dir / "kafka"
        self.libs = settings.jars_dir / f"kafka-{kafka_version()}"
        self.data = self.folder / "data"
        self.process = ManagedProcess("kafka", self.folder, "kafka.Kafka")

    def ensure_jars(self) -> bool:
        """Fetch the broker jars once; returns whether anything was downloaded."""
        stamp = self.libs / ".pom-sha256"
        wanted = hashlib.sha256(POM.read_bytes()).hexdigest()
        if stamp.exists() and stamp.read_text() == wanted:
            return False
        if shutil.which("mvn") is None:
            raise StackError("Maven (mvn) is not installed: install it with `apt-get install -y maven`, then run `driftline stack up` again")
        if self.libs.exists():
            shutil.rmtree(self.libs)
        self.libs.mkdir(parents=True)
        result = subprocess.run(
            [
                "mvn", "-B", "-ntp", "-q", "-f", str(POM),
                "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies",
                "-DincludeScope=runtime", f"-DoutputDirectory={self.libs}",
            ],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            last = (result.stdout + result.stderr).strip().splitlines()[-3:]
            raise StackError(f"Maven could not fetch the Kafka jars ({' | '.join(last)}): check that Maven Central is reachable, then retry")
        stamp.write_text(wanted)
        return True

    def _write_config(self) -> Path:
        s = self.settings
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{s.controller_port}",
            "controller.listener.names": "CONTROLLER",
            "listeners": f"PLAINTEXT://127.0.0.1:{s.kafka_port},CONTROLLER://127.0.0.1:{s.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{s.kafka_port},CONTROLLER://127.0.0.1:{s.controller_port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data.resolve()),
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "background.threads": "2",
            "num.recovery.threads.per.data.dir": "1",
            "log.cleaner.threads": "1",
            "log.retention.check.interval.ms": "60000",
        }
        config = self.folder / "server.properties"
        config.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))
        log4j = self.folder / "log4j2.properties"
        log4j.write_text(
            "status = warn\n"
            "appender.file.type = RollingFile\n"
            "appender.file.name = FILE\n"
            f"appender.file.fileName = {self.folder.resolve()}/logs/server.log\n"
            f"appender.file.filePattern = {self.folder.resolve()}/logs/server.log.%i\n"
            "appender.file.layout.type = PatternLayout\n"
            "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
            "appender.file.policies.type = Policies\n"
            "appender.file.policies.size.type = SizeBasedTriggeringPolicy\n"
            "appender.file.policies.size.size = 20MB\n"
            "appender.file.strategy.type = DefaultRolloverStrategy\n"
            "appender.file.strategy.max = 3\n"
            "rootLogger.level = INFO\n"
            "rootLogger.appenderRef.file.ref = FILE\n"
            "logger.kafka.name = kafka\n"
            "logger.kafka.level = WARN\n"
            "logger.kafkaserver.name = kafka.server.KafkaRaftServer\n"
            "logger.kafkaserver.level = INFO\n"
            "logger.apache.name = org.apache.kafka\n"
            "logger.apache.level = WARN\n"
        )
        return config

    def _java(self, *args: str, heap: str = "256m") -> list[str]:
        return [
            "java", f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={(self.folder / 'log4j2.properties').resolve()}",
            f"-Dkafka.logs.dir={(self.folder / 'logs').resolve()}",
            "-cp", f"{self.libs.resolve()}/*", *args,
        ]

    def _format_storage(self, config: Path) -> None:
        if (self.data / "meta.properties").exists():
            return
        if self.data.exists() and any(self.data.iterdir()):
            raise StackError(
                f"stale run folder: {self.data} holds files but no meta.properties (an interrupted format?); "
                "remove it with `driftline stack down --purge`, then `driftline stack up`"
            )
        cluster_id = subprocess.run(self._java("kafka.tools.StorageTool", "random-uuid"), capture_output=True, text=True, check=True).stdout.strip()
        result = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "--standalone", f"--cluster-id={cluster_id}", "--config", str(config)),
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise StackError(f"formatting Kafka storage in {self.data} failed ({result.stdout.strip()} {result.stderr.strip()}); remove the folder with `driftline stack down --purge` and retry")

    def start(self) -> bool:
        """Start the broker unless ours already runs; returns whether it started one."""
        if self.process.running_pid() is not None:
            return False
        if shutil.which("java") is None:
            raise StackError("Java is not installed (Kafka 4 needs Java 17+): install it with `apt-get install -y openjdk-17-jre-headless`, then retry")
        ensure_port_free(self.settings.kafka_port, "the Kafka broker", "DRIFTLINE_KAFKA_PORT")
        ensure_port_free(self.settings.controller_port, "the Kafka controller", "DRIFTLINE_CONTROLLER_PORT")
        self.ensure_jars()
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        self._format_storage(config)
        pid = self.process.spawn(self._java("kafka.Kafka", str(config), heap=self.settings.kafka_heap))
        self._wait_ready(pid)
        return True

    def _wait_ready(self, pid: int) -> None:
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{self.settings.kafka_port}", "log_level": 0})
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.exited_with(pid) is not None:
                self.process.pid_file.unlink(missing_ok=True)
                raise StackError(f"the Kafka broker exited during start-up ({self.process.log_tail()}); see {self.folder / 'logs'}")
            try:
                metadata = admin.list_topics(timeout=2)
                if metadata.brokers:
                    return
            except Exception:  # not answering yet: keep waiting until the deadline
                time.sleep(0.5)
        raise StackError(f"the Kafka broker did not answer a metadata request within {READY_TIMEOUT_SECONDS:.0f} s; see {self.folder / 'logs'}")

    def stop(self) -> bool:
        return self.process.stop()


def ensure_debian_package(program: str, package: str) -> None:
    """Install Debian's ``package`` with apt-get (as root) unless ``program`` is on the PATH."""
    if shutil.which(program):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise StackError(f"{program} is not installed: install it with `sudo apt-get install -y {package}`, then retry")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package]):
        result = subprocess.run(argv, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise StackError(f"`{' '.join(argv)}` failed ({result.stderr.strip()[-200:]}): install {package} by hand and retry")


class RedisServer:
    """Debian's redis-server on 127.0.0.1 with its own run folder; no persistence (it is a mirror)."""

    def __init__(self, settings: StackSettings):
        self.settings = settings
        self.folder = settings.run_dir / "redis"
        self.process = ManagedProcess("redis", self.folder, "redis-server")

    @staticmethod
    def ensure_installed() -> None:
        ensure_debian_package("redis-server", "redis-server")

    def start(self) -> bool:
        if self.process.running_pid() is not None:
            return False
        self.ensure_installed()
        ensure_port_free(self.settings.redis_port, "Redis", "DRIFTLINE_REDIS_PORT")
        self.folder.mkdir(parents=True, exist_ok=True)
        pid = self.process.spawn([
            "redis-server", "--port", str(self.settings.redis_port), "--bind", "127.0.0.1",
            "--dir", str(self.folder.resolve()), "--save", "", "--appendonly", "no", "--daemonize", "no",
        ])
        client = redis.Redis(port=self.settings.redis_port, socket_connect_timeout=1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.exited_with(pid) is not None:
                self.process.pid_file.unlink(missing_ok=True)
                raise StackError(f"redis-server exited during start-up ({self.process.log_tail()})")
            try:
                client.ping()
                return True
            except redis.ConnectionError:
                time.sleep(0.1)
        raise StackError(f"redis-server did not answer PING within 30 s; see {self.process.log_file}")

    def stop(self) -> bool:
        return self.process.stop()


@dataclass
class StackState:
    kafka_started: bool
    redis_started: bool


def up(settings: StackSettings) -> StackState:
    """Start what is not running (services given by DRIFTLINE_KAFKA/REDIS are left alone)."""
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    kafka_started = False if settings.external_kafka else KafkaBroker(settings).start()
    redis_started = False if settings.external_redis else RedisServer(settings).start()
    return StackState(kafka_started, redis_started)


def down(settings: StackSettings, purge: bool = False) -> StackState:
    """Stop the local broker and Redis; with ``purge`` also delete their data and logs (the jar cache stays)."""
    broker, server = KafkaBroker(settings), RedisServer(settings)
    state = StackState(broker.stop(), server.stop())
    if purge:
        for folder in (broker.folder, server.folder):
            shutil.rmtree(folder, ignore_errors=True)
    return state


def status(settings: StackSettings, timeout: float = 5.0) -> dict:
    """What runs: broker version and listeners, topics with partition counts, Redis version and memory."""
    report: dict = {"run_dir": str(settings.run_dir)}
    local = not settings.external_kafka
    broker_pid = KafkaBroker(settings).process.running_pid() if local else None
    kafka: dict = {
        "bootstrap": settings.kafka_bootstrap,
        "version": f"Apache Kafka {kafka_version()}" if local else "external (the Kafka protocol does not report it)",
        "pid": broker_pid,
    }
    try:
        metadata = AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 0}).list_topics(timeout=timeout)
        kafka["listeners"] = [f"PLAINTEXT://{b.host}:{b.port}" for b in metadata.brokers.values()]
        if local:
            kafka["listeners"].append(f"CONTROLLER://127.0.0.1:{settings.controller_port}")
        kafka["topics"] = {name: len(topic.partitions) for name, topic in sorted(metadata.topics.items()) if not name.startswith("__")}
        kafka["up"] = True
    except Exception as exc:  # the report says what is down instead of failing
        kafka.update(up=False, error=str(exc))
    report["kafka"] = kafka
    redis_report: dict = {"url": settings.redis_url, "pid": None if settings.external_redis else RedisServer(settings).process.running_pid()}
    try:
        client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=timeout)
        info = client.info()
        redis_report.update(up=True, version=info["redis_version"], used_memory=info["used_memory_human"], keys=client.dbsize())
    except redis.RedisError as exc:
        redis_report.update(up=False, error=str(exc))
    report["redis"] = redis_report
    return report
