// The Beta distribution's quantile function (scipy.stats.beta.ppf) in float64, for A1111's "Beta"
// scheduler: the regularised incomplete beta function by its continued fraction, inverted by
// bisection down to adjacent doubles.
#pragma once

namespace sdc::sampling {

// I_x(a, b) for x in [0, 1], a, b > 0.
double regularized_incomplete_beta(double x, double a, double b);
// The x in [0, 1] with I_x(a, b) = p, p in [0, 1].
double beta_ppf(double p, double a, double b);

}  // namespace sdc::sampling
