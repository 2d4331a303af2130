"""Ruby pushes, Python runs: jobs enqueued by real Ruby Sidekiq and ActiveJob run in a real pyq pool."""

from __future__ import annotations

import json

import pytest

from pool import running_pool, wait_until
from rubyhelp import requires_ruby, ruby_run

pytestmark = pytest.mark.slow

RUBY_PUSHES = """
require "active_job"
require "active_job/queue_adapters/sidekiq_adapter"
ActiveJob::Base.queue_adapter = :sidekiq
ActiveJob::Base.logger = Logger.new(nil)

class GreetJob < ActiveJob::Base
  queue_as :default
  def perform(name, options, greeting:, count: 1); end
end

Sidekiq::Client.push("class" => "Record", "args" => ["ruby-now"])
Sidekiq::Client.push("class" => "Record", "args" => ["ruby-later"], "at" => Time.now.to_f + 1)
Sidekiq::Client.push_bulk("class" => "Record", "args" => [["ruby-bulk-1"], ["ruby-bulk-2"]])
GreetJob.perform_later("bob", { sym: 1, "str" => "s" }, greeting: "hi", count: 2)
"""


@requires_ruby
def test_jobs_pushed_by_ruby_sidekiq_and_activejob_run_in_a_pyq_pool(tmp_path, r, redis_url):
    # Given a pyq pool that polls the schedule often
    with running_pool(tmp_path, redis_url, processes=1, poll_interval_average=0.5):
        # When Ruby pushes plain, scheduled, bulk and ActiveJob jobs
        ruby_run(RUBY_PUSHES, redis_url)
        # Then pyq runs each exactly once, with its arguments intact
        wait_until(lambda: r.llen("test:done") == 5, timeout=20)
        wait_until(lambda: r.get("stat:processed") == b"5")  # acks follow the runs by a few ms
    done = [t.decode() for t in r.lrange("test:done", 0, -1)]
    assert sorted(t for t in done if t.startswith("ruby")) == ["ruby-bulk-1", "ruby-bulk-2", "ruby-later", "ruby-now"]
    greet = json.loads(next(t for t in done if t.startswith("[")))
    assert greet == ["bob", {"str": "s", "sym": 1}, "hi", 2]
    assert r.zcard("schedule") == 0 and r.zcard("retry") == 0
