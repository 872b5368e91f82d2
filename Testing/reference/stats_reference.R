# Reference values for Testing/core/test_stats_reference.py, from the implementations statisticians
# use: pROC (DeLong), epiR (epi.tests, epi.ccc), base R (binom.test, mcnemar.test, cor.test).
#   Rscript Testing/reference/stats_reference.R      (run from the repository root)
# Printed with 12 significant digits; the test compares to 1e-9 or better unless said otherwise.
suppressMessages({library(pROC); library(epiR)})
cat("R", R.version$major, R.version$minor, "pROC", as.character(packageVersion("pROC")),
    "epiR", as.character(packageVersion("epiR")), "\n")
f <- function(name, x) cat(name, paste(sprintf("%.12g", x), collapse = " "), "\n")

# epi.tests on DTComPair's Paired1 test y1: TP 397, FP 84, FN 54, TN 177
tab <- as.table(matrix(c(397, 54, 84, 177), nrow = 2))
for (m in c("wilson", "clopper-pearson", "agresti", "jeffreys")) {
  d <- epi.tests(tab, method = m, digits = 4)$detail
  for (s in c("se", "sp", "pv.pos", "pv.neg", "diag.ac", "lr.pos", "lr.neg")) {
    row <- d[d$statistic == s, ]
    f(paste("epi.tests", m, s), c(row$lower, row$upper))
  }
}
# small and degenerate counts
for (x in list(c(0, 12), c(12, 12), c(1, 3), c(29, 30))) {
  for (m in c("wilson", "clopper-pearson", "jeffreys", "agresti")) {
    tab <- as.table(matrix(c(x[1], x[2] - x[1], 1, 1), nrow = 2))
    d <- epi.tests(tab, method = m, digits = 4)$detail
    row <- d[d$statistic == "se", ]
    f(paste("se", m, x[1], x[2]), c(row$lower, row$upper))
  }
}
# McNemar, base R, on the discordant pairs of Paired1 (sensitivity 78 vs 22; specificity 53 vs 22)
for (bc in list(c(78, 22), c(53, 22), c(7, 2), c(0, 5))) {
  m <- matrix(c(10, bc[2], bc[1], 10), nrow = 2)
  f(paste("mcnemar.test cc", bc[1], bc[2]), c(mcnemar.test(m, correct = TRUE)$statistic, mcnemar.test(m, correct = TRUE)$p.value))
  f(paste("mcnemar.test", bc[1], bc[2]), c(mcnemar.test(m, correct = FALSE)$statistic, mcnemar.test(m, correct = FALSE)$p.value))
  f(paste("binom.test", bc[1], bc[2]), binom.test(bc[1], bc[1] + bc[2], 0.5)$p.value)
}
# DeLong: AUC, CI, paired and unpaired tests, Youden
p <- read.csv("Testing/reference/roc_paired.csv")
u <- read.csv("Testing/reference/roc_unpaired.csv")
ra <- roc(p$truth, p$a, levels = c(0, 1), direction = "<", quiet = TRUE)
rb <- roc(p$truth, p$b, levels = c(0, 1), direction = "<", quiet = TRUE)
ru <- roc(u$truth, u$score, levels = c(0, 1), direction = "<", quiet = TRUE)
f("auc a", c(ci.auc(ra, method = "delong")))
f("var a", var(ra, method = "delong"))
f("auc b", c(ci.auc(rb, method = "delong")))
f("auc u", c(ci.auc(ru, method = "delong")))
t <- roc.test(ra, rb, method = "delong", paired = TRUE)
f("paired", c(t$statistic, t$p.value))
t <- roc.test(ra, ru, method = "delong", paired = FALSE)
f("unpaired", c(t$statistic, t$p.value))
for (r in list(list("a", ra), list("b", rb), list("u", ru))) {
  best <- coords(r[[2]], "best", best.method = "youden", ret = c("threshold", "sensitivity", "specificity"),
                 transpose = FALSE)
  f(paste("youden", r[[1]]), unlist(best[1, ]))
}
# Lin's CCC (z-transform interval) and Spearman
a <- read.csv("Testing/reference/agreement.csv")
cc <- epi.ccc(a$x, a$y, ci = "z-transform", conf.level = 0.95)
f("ccc", unlist(cc$rho.c))
s <- suppressWarnings(cor.test(a$x, a$y, method = "spearman", exact = FALSE))
f("spearman", c(s$estimate, s$p.value))
