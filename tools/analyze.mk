# tools/analyze.mk: static analysis (make analyze): cppcheck and clang-tidy
# (.clang-tidy) over every tier of src/; clean means no output and exit 0.
# Included by the Makefile (after INTERNAL_INC and PKGS are defined).

.PHONY: analyze

# ---- static analysis ----
# cppcheck: warnings, performance, portability; suppressions only inline
# (cppcheck-suppress comments saying why). clang-tidy: the checks and the
# reasons for the ones left out are in .clang-tidy; any finding fails.
ANALYZE_CFLAGS := -std=c11 -D_GNU_SOURCE $(INTERNAL_INC) $(shell pkg-config --cflags $(PKGS))
analyze:
	cppcheck --enable=warning,performance,portability --error-exitcode=1 --inline-suppr -q \
	    --std=c11 -D_GNU_SOURCE -I src -I src/engine -I src/integrations src/
	clang-tidy --quiet $(sort $(wildcard src/*/*.c)) -- $(ANALYZE_CFLAGS)
