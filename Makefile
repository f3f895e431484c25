# The verbs people use. `make run` and `make test` set up whatever is missing first.
.PHONY: run run-fast setup test test-unit test-e2e test-browser train validate test-bot eval-triggers bench check clean

PY := .venv/bin/python
RASA := $(CURDIR)/.venv/bin/rasa
# Rasa runs from bot/ and must import our component and policy (handoff_channel.nlu, .policies).
RASA_ENV := PYTHONPATH=$(CURDIR) RASA_TELEMETRY_ENABLED=false

run: setup                ## train if needed and run the product (visitor page + inbox URLs are printed)
	$(PY) -m handoff_channel.devstack run

run-fast: setup           ## same, with the fast test model
	$(PY) -m handoff_channel.devstack run --fast

setup:
	scripts/setup.sh

test:                     ## set up and run the whole test suite
	scripts/test.sh

test-unit: setup
	$(PY) -m pytest tests/unit -q

test-e2e: setup
	$(PY) -m pytest tests/e2e -q

test-browser: setup
	$(PY) -m pytest tests/browser -q

train: setup              ## train the production model (bot/config.yml)
	cd bot && $(RASA_ENV) $(RASA) train --config config.yml --fixed-model-name handoff --out models

validate: setup           ## rasa data validate
	cd bot && $(RASA_ENV) $(RASA) data validate --config config.yml --fail-on-warnings

test-bot: setup           ## rasa test with the test stories
	cd bot && $(RASA_ENV) $(RASA) train --config config.fast.yml --fixed-model-name fast --out models && \
	  $(RASA_ENV) $(RASA) test --stories tests/test_stories.yml --model models/fast.tar.gz --out results --fail-on-prediction-errors

eval-triggers: setup      ## precision and recall per handoff trigger on bot/tests/trigger_utterances*.yml
	$(PY) scripts/eval_triggers.py

bench: setup              ## benchmarks: prints a table, writes docs/benchmarks.md
	scripts/bench.sh

check: setup              ## lint and strict typing (ruff, mypy --strict on the package)
	.venv/bin/ruff check handoff_channel tests bot/actions
	.venv/bin/mypy handoff_channel

clean:
	rm -rf .run .cache test-artifacts bot/models bot/results
