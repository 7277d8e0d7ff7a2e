/* PyTorch operators (namespace kan) for the fused KAN layer kernel of uniform_kan.c, which this file
 * compiles in (the C file stays the one implementation).
 *
 * kan::layer_forward and kan::layer_backward run the kernel on the CPU, or on meta / fake tensors
 * only give their results' shapes (for tracing and torch.compile); they have no autograd formula.
 * kan::layer is the differentiable layer: its autograd formula calls the two, keeping the
 * per-sample buffer between them; it is differentiable once. kan::max_order, kan::activations and
 * kan::local_size give callers the kernel's limits and buffer sizes.
 *
 * Tensors: x [batch, in]; coef [in, out, num_basis]; scale_base, scale_spline and mask [in, out]
 * (mask: optional, multiplies both branches); all of one dtype, float32 or float64. The grid
 * constants are float64: scale and shift [in], poly [2 (k+1), k+1] (the spline order k is its
 * width less one) and, for non-uniform grids, knots [in, num_basis + k + 1] (see uniform_kan.c).
 *
 * A fleet of M models of one shape: every tensor but poly gains a leading model axis (x
 * [M, batch, in], coef [M, in, out, num_basis], scale [M, in], local [M, n], packed [M, size],
 * outputs and gradients likewise). Each model runs the same kernel call as alone, one after
 * another, so a model's numbers do not depend on the fleet it is in.
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <array>
#include <optional>
#include <string_view>
#include <tuple>
#include <vector>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

namespace kernel {
#include "uniform_kan.c"
}

namespace {

using at::Tensor;
using c10::SymInt;
using OptionalTensor = std::optional<Tensor>;

// indexed by the kernel's ACT_* values
constexpr std::array<std::string_view, 3> ACTIVATION_NAMES = {"silu", "identity", "zero"};
static_assert(kernel::ACT_SILU == 0 && kernel::ACT_IDENTITY == 1 && kernel::ACT_ZERO == 2);
// The largest per-sample buffer a layer keeps (else the backward recomputes): kan::layer for its
// backward, and KANLayer (through kan.native) also for inputs that come back
constexpr int64_t LAYER_LOCAL_BYTES = int64_t{64} << 20;

/* The layer's sizes, read from its tensors (symbolic while tracing); `fleet`: tensors carry a
 * leading model axis of `models` entries. */
struct Sizes {
    SymInt models, batch, n_in, n_out, num_basis, order;
    bool fleet;

    SymInt packed() const { return KAN_PACKED_SIZE(n_in, n_out, num_basis, order); }
    SymInt local() const { return KAN_LOCAL_SIZE(batch, n_in, order); }
    int64_t model_count() const { return fleet ? models.expect_int() : 1; }

    /* A per-model shape, with the model axis in front for a fleet. */
    std::vector<SymInt> of(std::initializer_list<SymInt> per_model) const {
        std::vector<SymInt> shape;
        if (fleet) shape.push_back(models);
        shape.insert(shape.end(), per_model.begin(), per_model.end());
        return shape;
    }
};

void expect(const char* op, const char* name, const Tensor& t, const Tensor& x, at::ScalarType dtype,
            c10::SymIntArrayRef shape) {
    TORCH_CHECK(t.device() == x.device(), op, ": ", name, " must be on ", x.device(), " as x, got ", t.device());
    TORCH_CHECK(t.scalar_type() == dtype, op, ": ", name, " must be ", dtype, ", got ", t.scalar_type());
    TORCH_CHECK(t.sym_sizes().equals(shape), op, ": ", name, " must have shape ", shape, ", got ", t.sym_sizes());
    TORCH_CHECK(t.is_contiguous(), op, ": ", name, " must be contiguous");
}

void expect(const char* op, const char* name, const OptionalTensor& t, const Tensor& x, at::ScalarType dtype,
            c10::SymIntArrayRef shape) {
    if (t.has_value()) expect(op, name, *t, x, dtype, shape);
}

/* Checks the tensors every op takes and returns the sizes they imply. */
Sizes check_layer(const char* op, const Tensor& x, const Tensor& coef, const Tensor& scale_spline,
                  const OptionalTensor& mask, const Tensor& scale, const Tensor& shift, const Tensor& poly,
                  const OptionalTensor& knots) {
    TORCH_CHECK(x.device().is_cpu() || x.device().is_meta(), op, ": runs on the CPU, got x on ", x.device());
    TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, op,
                ": x must be float32 or float64, got ", x.scalar_type());
    TORCH_CHECK(x.dim() == 2 || x.dim() == 3, op, ": x must be [batch, in] or, for a fleet, [models, batch, in], "
                "got shape ", x.sym_sizes());
    const bool fleet = x.dim() == 3;
    TORCH_CHECK(coef.dim() == x.dim() + 1, op, ": coef must be ", fleet ? "[models, in, out, num_basis]" : "[in, out, num_basis]",
                " like x, got shape ", coef.sym_sizes());
    TORCH_CHECK(poly.dim() == 2 && poly.sym_size(1) >= 1 && poly.sym_size(1) <= MAX_ORDER + 1, op,
                ": poly must be [2 (k+1), k+1] with spline order k <= ", MAX_ORDER, ", got shape ", poly.sym_sizes());
    const int lead = fleet ? 1 : 0;
    Sizes s{fleet ? x.sym_size(0) : SymInt(1), x.sym_size(lead), x.sym_size(lead + 1), coef.sym_size(lead + 1),
            coef.sym_size(lead + 2), poly.sym_size(1) - 1, fleet};
    const auto dtype = x.scalar_type();
    expect(op, "x", x, x, dtype, s.of({s.batch, s.n_in}));
    expect(op, "coef", coef, x, dtype, s.of({s.n_in, s.n_out, s.num_basis}));
    expect(op, "scale_spline", scale_spline, x, dtype, s.of({s.n_in, s.n_out}));
    expect(op, "mask", mask, x, dtype, s.of({s.n_in, s.n_out}));
    expect(op, "scale", scale, x, at::kDouble, s.of({s.n_in}));
    expect(op, "shift", shift, x, at::kDouble, s.of({s.n_in}));
    expect(op, "poly", poly, x, at::kDouble, {2 * (s.order + 1), s.order + 1});
    expect(op, "knots", knots, x, at::kDouble, s.of({s.n_in, s.num_basis + s.order + 1}));
    return s;
}

int activation_code(const char* op, c10::string_view activation) {
    for (size_t code = 0; code < ACTIVATION_NAMES.size(); code++)
        if (activation == ACTIVATION_NAMES[code]) return static_cast<int>(code);
    TORCH_CHECK(false, op, ": activation must be silu, identity or zero, got '", activation, "'");
}

int local_mode(const char* op, c10::string_view mode) {
    if (mode == "none") return kernel::LOCAL_NONE;
    if (mode == "fill") return kernel::LOCAL_FILL;
    if (mode == "read") return kernel::LOCAL_READ;
    TORCH_CHECK(false, op, ": local_mode must be none, fill or read, got '", mode, "'");
}

void check_local(const char* op, const OptionalTensor& local, const Tensor& x, const Sizes& s) {
    if (!local.has_value()) return;
    const bool fits = s.fleet ? local->dim() == 2 && local->sym_size(0) == s.models && local->sym_size(1) >= s.local()
                              : local->dim() == 1 && local->sym_size(0) >= s.local();
    TORCH_CHECK(fits, op, ": local must be ", s.fleet ? "[models, n]" : "[n]", " with n >= ", s.local(),
                " (kan::local_size), got shape ", local->sym_sizes());
    expect(op, "local", *local, x, at::kDouble, local->sym_sizes());
}

/* Model m's part of a contiguous tensor that holds `models` equal parts (the whole tensor for one model). */
template <typename T>
T* part(const Tensor& t, int64_t m, int64_t models) {
    return t.data_ptr<T>() + m * (t.numel() / models);
}

template <typename T>
T* optional_part(const OptionalTensor& t, int64_t m, int64_t models) {
    return t.has_value() ? part<T>(*t, m, models) : nullptr;
}

/* The kernel's description of model m's layer. */
kernel::kan_shape kernel_shape(const Sizes& s, int64_t m, const Tensor& scale, const Tensor& shift,
                               const Tensor& poly, const OptionalTensor& knots, int activation) {
    const int64_t models = s.model_count();
    return {s.batch.expect_int(), s.n_in.expect_int(), s.n_out.expect_int(), s.num_basis.expect_int(),
            static_cast<int>(s.order.expect_int()), activation, part<double>(scale, m, models),
            part<double>(shift, m, models), poly.data_ptr<double>(), optional_part<double>(knots, m, models)};
}

template <typename T>
struct Entry;
template <>
struct Entry<double> {
    static constexpr auto forward = kernel::kan_layer_forward_f64;
    static constexpr auto backward = kernel::kan_layer_backward_f64;
};
template <>
struct Entry<float> {
    static constexpr auto forward = kernel::kan_layer_forward_f32;
    static constexpr auto backward = kernel::kan_layer_backward_f32;
};

/* kan::layer_forward: the layer output [batch, out] and the packed weights the backward reads.
 * local_mode "fill" fills `local` (with the basis slopes if `slopes`), "read" reads it. */
std::tuple<Tensor, Tensor> forward_shapes(const Tensor& x, const Tensor& coef, const Tensor& scale_base,
                                          const Tensor& scale_spline, const OptionalTensor& mask,
                                          const Tensor& scale, const Tensor& shift, const Tensor& poly,
                                          const OptionalTensor& knots, c10::string_view activation,
                                          const OptionalTensor& local, c10::string_view mode,
                                          Sizes* sizes = nullptr) {
    constexpr const char* op = "kan::layer_forward";
    const Sizes s = check_layer(op, x, coef, scale_spline, mask, scale, shift, poly, knots);
    expect(op, "scale_base", scale_base, x, x.scalar_type(), s.of({s.n_in, s.n_out}));
    activation_code(op, activation);
    local_mode(op, mode);
    check_local(op, local, x, s);
    if (sizes) *sizes = s;
    return {at::empty_symint(s.of({s.batch, s.n_out}), x.options()), at::empty_symint(s.of({s.packed()}), x.options())};
}

std::tuple<Tensor, Tensor> forward_meta(const Tensor& x, const Tensor& coef, const Tensor& scale_base,
                                        const Tensor& scale_spline, const OptionalTensor& mask, const Tensor& scale,
                                        const Tensor& shift, const Tensor& poly, const OptionalTensor& knots,
                                        c10::string_view activation, const OptionalTensor& local,
                                        c10::string_view mode, bool slopes) {
    return forward_shapes(x, coef, scale_base, scale_spline, mask, scale, shift, poly, knots, activation, local,
                          mode);
}

template <typename T>
void run_forward(const Sizes& s, const Tensor& x, const Tensor& coef, const Tensor& scale_base,
                 const Tensor& scale_spline, const OptionalTensor& mask, const Tensor& scale, const Tensor& shift,
                 const Tensor& poly, const OptionalTensor& knots, int activation, Tensor& packed, Tensor& out,
                 const OptionalTensor& local, int mode, bool slopes) {
    const int64_t models = s.model_count();
    for (int64_t m = 0; m < models; m++) {
        const auto shape = kernel_shape(s, m, scale, shift, poly, knots, activation);
        Entry<T>::forward(&shape, part<T>(x, m, models), part<T>(coef, m, models), part<T>(scale_base, m, models),
                          part<T>(scale_spline, m, models), optional_part<T>(mask, m, models),
                          part<T>(packed, m, models), part<T>(out, m, models), optional_part<double>(local, m, models),
                          mode, slopes);
    }
}

std::tuple<Tensor, Tensor> forward_cpu(const Tensor& x, const Tensor& coef, const Tensor& scale_base,
                                       const Tensor& scale_spline, const OptionalTensor& mask, const Tensor& scale,
                                       const Tensor& shift, const Tensor& poly, const OptionalTensor& knots,
                                       c10::string_view activation, const OptionalTensor& local,
                                       c10::string_view mode, bool slopes) {
    constexpr const char* op = "kan::layer_forward";
    Sizes s;
    auto [out, packed] = forward_shapes(x, coef, scale_base, scale_spline, mask, scale, shift, poly, knots,
                                        activation, local, mode, &s);
    const int code = activation_code(op, activation), how = local_mode(op, mode);
    if (x.scalar_type() == at::kDouble)
        run_forward<double>(s, x, coef, scale_base, scale_spline, mask, scale, shift, poly, knots, code, packed, out,
                            local, how, slopes);
    else
        run_forward<float>(s, x, coef, scale_base, scale_spline, mask, scale, shift, poly, knots, code, packed, out,
                           local, how, slopes);
    return {out, packed};
}

using Gradients = std::tuple<OptionalTensor, Tensor, Tensor, Tensor>;

/* kan::layer_backward: gradients of (x if input_grad, coef, scale_base, scale_spline) for grad_out
 * [batch, out]; `local` is the buffer the forward filled (with slopes if input_grad) or None. */
Gradients backward_shapes(const Tensor& x, const Tensor& coef, const Tensor& scale_spline, const OptionalTensor& mask,
                          const Tensor& packed, const Tensor& grad_out, const Tensor& scale, const Tensor& shift,
                          const Tensor& poly, const OptionalTensor& knots, c10::string_view activation,
                          bool input_grad, const OptionalTensor& local, Sizes* sizes = nullptr) {
    constexpr const char* op = "kan::layer_backward";
    const Sizes s = check_layer(op, x, coef, scale_spline, mask, scale, shift, poly, knots);
    expect(op, "packed", packed, x, x.scalar_type(), s.of({s.packed()}));
    const auto out_shape = s.of({s.batch, s.n_out});
    TORCH_CHECK(grad_out.scalar_type() == x.scalar_type() && grad_out.sym_sizes().equals(out_shape), op,
                ": grad_out must be ", x.scalar_type(), " of shape ", c10::SymIntArrayRef(out_shape), ", got ",
                grad_out.scalar_type(), " of shape ", grad_out.sym_sizes());
    activation_code(op, activation);
    check_local(op, local, x, s);
    if (sizes) *sizes = s;
    OptionalTensor grad_x = input_grad ? OptionalTensor(at::empty_like(x)) : std::nullopt;
    return {grad_x, at::empty_like(coef), at::empty_like(scale_spline), at::empty_like(scale_spline)};
}

Gradients backward_meta(const Tensor& x, const Tensor& coef, const Tensor& scale_spline, const OptionalTensor& mask,
                        const Tensor& packed, const Tensor& grad_out, const Tensor& scale, const Tensor& shift,
                        const Tensor& poly, const OptionalTensor& knots, c10::string_view activation, bool input_grad,
                        const OptionalTensor& local) {
    return backward_shapes(x, coef, scale_spline, mask, packed, grad_out, scale, shift, poly, knots, activation,
                           input_grad, local);
}

/* Nonzero where a model's backward ran out of memory. */
template <typename T>
int run_backward(const Sizes& s, const Tensor& x, const Tensor& coef, const Tensor& scale_spline,
                 const OptionalTensor& mask, const Tensor& packed, const Tensor& grad_out, const Tensor& scale,
                 const Tensor& shift, const Tensor& poly, const OptionalTensor& knots, int activation,
                 Gradients& grads, const OptionalTensor& local) {
    auto& [grad_x, grad_coef, grad_base, grad_spline] = grads;
    const int64_t models = s.model_count();
    for (int64_t m = 0; m < models; m++) {
        const auto shape = kernel_shape(s, m, scale, shift, poly, knots, activation);
        const int status = Entry<T>::backward(
            &shape, part<T>(x, m, models), part<T>(coef, m, models), part<T>(scale_spline, m, models),
            optional_part<T>(mask, m, models), part<T>(packed, m, models), part<T>(grad_out, m, models),
            part<T>(grad_coef, m, models), part<T>(grad_base, m, models), part<T>(grad_spline, m, models),
            optional_part<T>(grad_x, m, models), optional_part<double>(local, m, models));
        if (status != 0) return status;
    }
    return 0;
}

Gradients backward_cpu(const Tensor& x, const Tensor& coef, const Tensor& scale_spline, const OptionalTensor& mask,
                       const Tensor& packed, const Tensor& grad_out, const Tensor& scale, const Tensor& shift,
                       const Tensor& poly, const OptionalTensor& knots, c10::string_view activation, bool input_grad,
                       const OptionalTensor& local) {
    constexpr const char* op = "kan::layer_backward";
    const Tensor grad = grad_out.contiguous();
    Sizes s;
    Gradients grads = backward_shapes(x, coef, scale_spline, mask, packed, grad, scale, shift, poly, knots,
                                      activation, input_grad, local, &s);
    const int code = activation_code(op, activation);
    const int status = x.scalar_type() == at::kDouble
                           ? run_backward<double>(s, x, coef, scale_spline, mask, packed, grad, scale, shift, poly,
                                                  knots, code, grads, local)
                           : run_backward<float>(s, x, coef, scale_spline, mask, packed, grad, scale, shift, poly,
                                                 knots, code, grads, local);
    TORCH_CHECK_WITH(OutOfMemoryError, status == 0, op, ": no memory for the layer gradient");
    return grads;
}

const c10::TypedOperatorHandle<decltype(forward_cpu)>& forward_op() {
    static const auto handle =
        c10::Dispatcher::singleton().findSchemaOrThrow("kan::layer_forward", "").typed<decltype(forward_cpu)>();
    return handle;
}

const c10::TypedOperatorHandle<decltype(backward_cpu)>& backward_op() {
    static const auto handle =
        c10::Dispatcher::singleton().findSchemaOrThrow("kan::layer_backward", "").typed<decltype(backward_cpu)>();
    return handle;
}

/* kan::layer without autograd (no gradient wanted, and meta / fake tensors). */
Tensor layer_plain(const Tensor& x, const Tensor& coef, const Tensor& scale_base, const Tensor& scale_spline,
                   const OptionalTensor& mask, const Tensor& scale, const Tensor& shift, const Tensor& poly,
                   const OptionalTensor& knots, c10::string_view activation) {
    return std::get<0>(forward_op().call(x, coef, scale_base, scale_spline, mask, scale, shift, poly, knots,
                                         activation, std::nullopt, "none", false));
}

OptionalTensor present(const Tensor& t) { return t.defined() ? OptionalTensor(t) : std::nullopt; }

/* kan::layer's autograd formula: the forward fills the per-sample buffer (slopes too when x needs
 * a gradient), the backward reads it. */
struct LayerFunction : torch::autograd::Function<LayerFunction> {
    static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& x, const Tensor& coef,
                          const Tensor& scale_base, const Tensor& scale_spline, const OptionalTensor& mask,
                          const Tensor& scale, const Tensor& shift, const Tensor& poly, const OptionalTensor& knots,
                          c10::string_view activation) {
        const bool fleet = x.dim() == 3;
        const int lead = fleet ? 1 : 0;
        const SymInt local_size = KAN_LOCAL_SIZE(x.sym_size(lead), x.sym_size(lead + 1), poly.sym_size(1) - 1);
        const SymInt models = fleet ? x.sym_size(0) : SymInt(1);
        OptionalTensor local;
        if (models * local_size * 8 <= LAYER_LOCAL_BYTES) {
            std::vector<SymInt> shape;
            if (fleet) shape.push_back(models);
            shape.push_back(local_size);
            local = at::empty_symint(shape, x.options().dtype(at::kDouble));
        }
        const bool slopes = x.requires_grad();
        auto [out, packed] = forward_op().call(x, coef, scale_base, scale_spline, mask, scale, shift, poly, knots,
                                               activation, local, local ? "fill" : "none", slopes);
        ctx->save_for_backward({x, coef, scale_spline, mask.value_or(Tensor()), packed, scale, shift, poly,
                                knots.value_or(Tensor()), local.value_or(Tensor())});
        ctx->saved_data["activation"] = std::string(activation);
        return out;
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grad_out) {
        TORCH_CHECK(!at::GradMode::is_enabled(), "kan::layer is differentiable once: its backward has no gradient "
                                                 "(create_graph=True)");
        const auto saved = ctx->get_saved_variables();
        const auto activation = ctx->saved_data["activation"].toStringRef();
        auto [grad_x, grad_coef, grad_base, grad_spline] =
            backward_op().call(saved[0], saved[1], saved[2], present(saved[3]), saved[4], grad_out[0], saved[5],
                               saved[6], saved[7], present(saved[8]), activation, ctx->needs_input_grad(0),
                               present(saved[9]));
        return {grad_x.value_or(Tensor()), grad_coef, grad_base, grad_spline, Tensor(), Tensor(), Tensor(),
                Tensor(), Tensor(), Tensor()};
    }
};

Tensor layer_autograd(const Tensor& x, const Tensor& coef, const Tensor& scale_base, const Tensor& scale_spline,
                      const OptionalTensor& mask, const Tensor& scale, const Tensor& shift, const Tensor& poly,
                      const OptionalTensor& knots, c10::string_view activation) {
    const bool constants_need_grad = (mask && mask->requires_grad()) || scale.requires_grad() ||
                                     shift.requires_grad() || poly.requires_grad() ||
                                     (knots && knots->requires_grad());
    TORCH_CHECK(!(at::GradMode::is_enabled() && constants_need_grad),
                "kan::layer: mask, scale, shift, poly and knots get no gradient; pass them detached");
    const bool differentiated = at::GradMode::is_enabled() && (x.requires_grad() || coef.requires_grad() ||
                                                               scale_base.requires_grad() ||
                                                               scale_spline.requires_grad());
    if (!differentiated) {
        at::AutoDispatchBelowADInplaceOrView below;
        return layer_plain(x, coef, scale_base, scale_spline, mask, scale, shift, poly, knots, activation);
    }
    return LayerFunction::apply(x, coef, scale_base, scale_spline, mask, scale, shift, poly, knots, activation);
}

int64_t max_order() { return MAX_ORDER; }

std::vector<std::string> activations() { return {ACTIVATION_NAMES.begin(), ACTIVATION_NAMES.end()}; }

int64_t local_size(int64_t batch, int64_t n_in, int64_t order) { return KAN_LOCAL_SIZE(batch, n_in, order); }

int64_t local_bytes_kept() { return LAYER_LOCAL_BYTES; }

}  // namespace

TORCH_LIBRARY(kan, m) {
    m.def("layer_forward(Tensor x, Tensor coef, Tensor scale_base, Tensor scale_spline, Tensor? mask, Tensor scale, "
          "Tensor shift, Tensor poly, Tensor? knots, str activation, Tensor(a!)? local, str local_mode, bool slopes)"
          " -> (Tensor, Tensor)");
    m.def("layer_backward(Tensor x, Tensor coef, Tensor scale_spline, Tensor? mask, Tensor packed, Tensor grad_out, "
          "Tensor scale, Tensor shift, Tensor poly, Tensor? knots, str activation, bool input_grad, Tensor? local)"
          " -> (Tensor?, Tensor, Tensor, Tensor)");
    m.def("layer(Tensor x, Tensor coef, Tensor scale_base, Tensor scale_spline, Tensor? mask, Tensor scale, "
          "Tensor shift, Tensor poly, Tensor? knots, str activation) -> Tensor");
    m.def("max_order() -> int", &max_order);
    m.def("activations() -> str[]", &activations);
    m.def("local_size(int batch, int n_in, int order) -> int", &local_size);
    m.def("local_bytes_kept() -> int", &local_bytes_kept);
}

TORCH_LIBRARY_IMPL(kan, CPU, m) {
    m.impl("layer_forward", &forward_cpu);
    m.impl("layer_backward", &backward_cpu);
}

TORCH_LIBRARY_IMPL(kan, Meta, m) {
    m.impl("layer_forward", &forward_meta);
    m.impl("layer_backward", &backward_meta);
}

TORCH_LIBRARY_IMPL(kan, CompositeExplicitAutograd, m) { m.impl("layer", &layer_plain); }

TORCH_LIBRARY_IMPL(kan, Autograd, m) { m.impl("layer", &layer_autograd); }
