# The two commands of the README: `make run` runs the product, `make test` runs every test.
# Both set up what is missing first (tools/bootstrap.sh).
.PHONY: run test setup lint bench

run: setup
	.venv/bin/ivr-run $(ARGS)

test: setup
	.venv/bin/python -m pytest $(PYTEST_ARGS)

setup:
	@bash tools/bootstrap.sh

lint: setup
	.venv/bin/ruff check ivr speech tests
	.venv/bin/ruff format --check ivr speech tests
	.venv/bin/mypy ivr speech
