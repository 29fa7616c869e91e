"""Every Redis key rayhook uses, in one place. All start with the namespace.

{ns}:wf:seq                  INCR counter for version ids
{ns}:wf:v:{id}               JSON of one workflow version (its definition)
{ns}:wf:versions:{key}       ZSET version ids of a key (score = id)
{ns}:wf:all                  ZSET every version id (score = id)
{ns}:wf:current              HASH key → current version id
{ns}:wf:enabled              HASH key → enabled version id (the one serving)
{ns}:wf:executed:{id}        executions a version started (frozen once > 0)
{ns}:wf:changed              pub/sub channel: a key whose versions changed
{ns}:inbox:{key}             STREAM accepted async events of a workflow
{ns}:draining                SET keys not enabled whose inbox is still read (resumes,
                             events accepted before a disable)
{ns}:timers:due              ZSET workflow key → when its earliest timer is due (ms)
{ns}:inboxes:changed         counter INCR'd whenever the enabled hash or the draining
                             set changes (the executors re-read them when it moves)
{ns}:sync:{i}                pub/sub channel: sync calls to execution actor i
{ns}:replies:{process}       pub/sub channel: the replies to one ingress process
{ns}:executors:started       pub/sub channel: an execution actor (re)started
{ns}:exec:{id}               JSON of one execution
{ns}:exec:{id}:jobs          HASH job id → JSON of one job
{ns}:execs:status            HASH execution id → status ("null" while queued)
{ns}:execs                   ZSET every execution id (score = created ms)
{ns}:execs:s:{status}        ZSET executions by status
{ns}:execs:k:{key}           ZSET executions of a workflow key
{ns}:execs:k:{key}:s:{status}  ZSET executions of a key by status
{ns}:execs:moving            HASH execution id → its history stream entry (final,
                             not yet committed to the SQL history)
{ns}:execs:destroyed:{id}    STRING a final execution destroyed before the history
                             writer forgot it (a day): its SQL row goes again
{ns}:history                 STREAM final executions with their jobs, on their way
                             to the SQL history; consumer group `writers`
{ns}:history:unreadable      STREAM history entries that could not be decoded (kept
                             for a person to look at; never expected)

The status hash and the indexes hold hot executions only: running, waiting, and
final ones until the history writer has moved them (SPEC §9).
"""

from __future__ import annotations

from dataclasses import dataclass

INBOX_GROUP = "supervisors"
HISTORY_GROUP = "writers"


@dataclass(frozen=True, slots=True)
class Keys:
    ns: str

    @property
    def version_seq(self) -> str:
        return f"{self.ns}:wf:seq"

    def version(self, version_id: int | str) -> str:
        return f"{self.ns}:wf:v:{version_id}"

    def versions_of(self, key: str) -> str:
        return f"{self.ns}:wf:versions:{key}"

    @property
    def all_versions(self) -> str:
        return f"{self.ns}:wf:all"

    @property
    def current(self) -> str:
        return f"{self.ns}:wf:current"

    @property
    def enabled(self) -> str:
        return f"{self.ns}:wf:enabled"

    def executed(self, version_id: int | str) -> str:
        return f"{self.ns}:wf:executed:{version_id}"

    @property
    def changed_channel(self) -> str:
        return f"{self.ns}:wf:changed"

    def inbox(self, key: str) -> str:
        return f"{self.ns}:inbox:{key}"

    def sync_calls(self, executor: int) -> str:
        return f"{self.ns}:sync:{executor}"

    @property
    def executor_starts(self) -> str:
        return f"{self.ns}:executors:started"

    def sync_replies(self, process: str) -> str:
        return f"{self.ns}:replies:{process}"

    @property
    def draining(self) -> str:
        return f"{self.ns}:draining"

    @property
    def inboxes_changed(self) -> str:
        return f"{self.ns}:inboxes:changed"

    @property
    def lone_runs(self) -> str:
        """Hash: executor consumer -> "<workflow key> <entry id>" it runs alone now."""
        return f"{self.ns}:lonerun"

    @property
    def timers_due(self) -> str:
        return f"{self.ns}:timers:due"

    def timers(self, key: str) -> str:
        return f"{self.ns}:timers:{key}"

    def timer_events(self, key: str) -> str:
        return f"{self.ns}:timers:{key}:events"

    def metrics(self, name: str) -> str:
        return f"{self.ns}:metrics:{name}"

    def dedupe(self, key: str, digest: str) -> str:
        return f"{self.ns}:dedupe:{key}:{digest}"

    def dedupe_reply(self, key: str, digest: str) -> str:
        return f"{self.ns}:dedupe:{key}:{digest}:reply"

    def execution(self, execution_id: str) -> str:
        return f"{self.ns}:exec:{execution_id}"

    def jobs(self, execution_id: str) -> str:
        return f"{self.ns}:exec:{execution_id}:jobs"

    @property
    def execution_statuses(self) -> str:
        return f"{self.ns}:execs:status"

    def executions(self, key: str | None = None, status: int | str | None = "any") -> str:
        """The index of executions, optionally of one workflow key and/or status."""
        base = f"{self.ns}:execs" if key is None else f"{self.ns}:execs:k:{key}"
        if status == "any":
            return base
        return f"{base}:s:{'null' if status is None else status}"

    @property
    def history(self) -> str:
        return f"{self.ns}:history"

    @property
    def history_unreadable(self) -> str:
        return f"{self.ns}:history:unreadable"

    @property
    def moving(self) -> str:
        return f"{self.ns}:execs:moving"

    def destroyed(self, execution_id: str) -> str:
        return f"{self.ns}:execs:destroyed:{execution_id}"

    def pattern(self) -> str:
        """Matches every key of this namespace (tests and `destroy` cleanup)."""
        return f"{self.ns}:*"
