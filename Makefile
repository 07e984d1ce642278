# Everything lives in operator/; these forward so that `make run` and `make test` work
# from the repository root too.
.DEFAULT_GOAL := help
%:
	@$(MAKE) --no-print-directory -C operator $@
help:
	@$(MAKE) --no-print-directory -C operator help
