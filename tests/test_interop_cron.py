"""pyq's cron against the real Ruby sidekiq-cron 1.8 gem on the same Redis (1.x key layout)."""

from __future__ import annotations

import json
import time

import redis
from tests.rubyhelp import requires_ruby, ruby_run

from pyq import payload
from pyq.cron import CronJob, CronPoller, CronStore
from pyq.keys import Keys

K = Keys()
CRON_RB = 'require "sidekiq/cron/job"\n'

LIST_JOBS_RB = CRON_RB + """
now = Time.at(Float(ARGV[0])).utc
out = Sidekiq::Cron::Job.all.sort_by(&:name).map do |j|
  {name: j.name, cron: j.cron, klass: j.klass, status: j.status, valid: j.valid?,
   queue: JSON.parse(j.message)["queue"], args: j.args, last_time: j.last_time(now).to_f,
   date_as_argument: j.date_as_argument?}
end
puts JSON.generate(out)
"""


@requires_ruby
def test_ruby_lists_pyq_schedules_and_agrees_on_fire_times(r: redis.Redis, redis_url: str) -> None:
    # Given schedules saved by pyq in the 1.x layout
    store = CronStore(r, K, version=1)
    jobs = [CronJob("berlin_cleanup", "0 2 * * * Europe/Berlin", "Cleanup", queue="low", args=[30]),
            CronJob("monday_report", "every monday at 9am", "Report", status="disabled"),
            CronJob("probe", "*/20 * * * * *", "Probe", date_as_argument=True),
            CronJob("nightly", "daily", "Nightly")]
    now_s = 1_704_100_007.5  # not within the first second of a tick: fugit excludes that second
    for job in jobs:
        store.save(job, now_s=now_s)
    # When Ruby's Sidekiq::Cron::Job.all reads them
    listed = json.loads(ruby_run(LIST_JOBS_RB, redis_url, repr(now_s)))
    # Then every field matches and fugit computes the same last fire time as pyq
    assert [j["name"] for j in listed] == sorted(j.name for j in jobs)
    by_name = {j["name"]: j for j in listed}
    for job in jobs:
        seen = by_name[job.name]
        assert (seen["klass"], seen["queue"], seen["status"], seen["valid"]) == (job.klass, job.queue,
                                                                                  job.status, True)
        assert seen["args"] == list(job.args) and seen["date_as_argument"] == job.date_as_argument
        assert seen["last_time"] == job.last_time(now_s), job.name
    assert by_name["nightly"]["cron"] == "@daily" and by_name["probe"]["cron"] == "*/20 * * * * *"


@requires_ruby
def test_pyq_runs_a_schedule_created_by_ruby(r: redis.Redis, redis_url: str, client) -> None:
    # Given a schedule created by Ruby
    ruby_run(CRON_RB + 'Sidekiq::Cron::Job.create(name: "rb_job", cron: "* * * * *", class: "RubyJob", '
                       'args: [1, "two"], queue: "rbq") or raise "not saved"', redis_url)
    store = CronStore(r, K, version=1)
    [job] = store.all()
    assert (job.name, job.klass, job.queue, job.args, job.source) == ("rb_job", "RubyJob", "rbq", (1, "two"),
                                                                      "dynamic")
    # When pyq's poller reaches a later minute
    fire_s = job.next_time(time.time()) + 120
    [(name, jid)] = CronPoller(r, K, client, version=1).tick(fire_s + 1)
    # Then the job is in Ruby's queue, and Ruby reads the enqueue time and history pyq wrote
    [raw] = r.lrange(K.queue("rbq"), 0, -1)
    pushed = payload.loads(raw)
    assert (name, pushed["jid"], pushed["class"], pushed["args"]) == ("rb_job", jid, "RubyJob", [1, "two"])
    seen = json.loads(ruby_run(CRON_RB + """
j = Sidekiq::Cron::Job.find("rb_job")
puts JSON.generate(last: j.last_enqueue_time.to_f, history: j.jid_history_from_redis)
""", redis_url))
    assert seen["last"] == int(fire_s + 1)
    assert seen["history"][0]["jid"] == jid


TRY_TICK_RB = CRON_RB + """
before = Sidekiq::Queue.new(ARGV[1]).size
Sidekiq::Cron::Job.find(ARGV[0]).test_and_enque_for_time!(Time.at(Float(ARGV[2])).utc)
puts Sidekiq::Queue.new(ARGV[1]).size - before
"""


@requires_ruby
def test_ruby_and_pyq_pollers_share_one_push_per_tick(r: redis.Redis, redis_url: str, client) -> None:
    store = CronStore(r, K, version=1)
    store.save(CronJob("shared", "* * * * *", "SharedJob", queue="sq"))
    poller = CronPoller(r, K, client, version=1)
    base = (int(time.time()) // 60 + 10) * 60  # two ticks ten minutes ahead, on minute boundaries
    # pyq pushes tick `base`; Ruby then tries the same tick (its last-enqueue guard cleared, so only
    # the ZADD member can stop it) and pushes nothing.
    assert len(poller.tick(base + 1)) == 1
    r.hset(store.job_key("shared"), "last_enqueue_time", "")
    assert ruby_run(TRY_TICK_RB, redis_url, "shared", "sq", repr(base + 2.0)).strip() == "0"
    # Ruby pushes tick `base + 60` first; pyq's poll of that tick then pushes nothing.
    assert ruby_run(TRY_TICK_RB, redis_url, "shared", "sq", repr(base + 61.0)).strip() == "1"
    assert poller.tick(base + 62) == []
    assert r.llen(K.queue("sq")) == 2
    members = {m.decode() for m in r.zrange(store.enqueued_key("shared"), 0, -1)}
    assert {time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) for t in (base, base + 60)} <= members
