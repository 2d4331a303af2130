"""Push a few example jobs: ``python -m examples.enqueue`` (uses PYQ_REDIS_URL / REDIS_URL)."""

from __future__ import annotations

from examples.jobs import BuildReport, charge_card, flaky, send_welcome_email


def main() -> None:
    jids = [
        send_welcome_email.perform_async(1, "ada@example.com"),
        charge_card.perform_async(42, 1999),
        BuildReport.perform_async(7),
        send_welcome_email.perform_in(2, 2, "grace@example.com"),
        flaky.perform_async("demo"),
    ]
    jids += send_welcome_email.perform_bulk([(n, f"user{n}@example.com") for n in range(3, 8)])
    print(f"enqueued {len(jids)} jobs: {', '.join(jids[:3])}, ...")


if __name__ == "__main__":
    main()
