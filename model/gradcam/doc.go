// Package gradcam shows where a classifier looks: Grad-CAM (Selvaraju et
// al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
// Localization", 2017), as Keras' "Grad-CAM class activation visualization"
// example computes it.
//
// # The map
//
// A ResNet's last block outputs feature maps A (rows x cols x depth: 7 x 7 x
// 2048 for a 224 x 224 image) that global average pooling turns into the
// features the head classifies. Grad-CAM weighs each map k by α_k, the
// spatial mean of the gradient of a class's score y (its logit, before the
// softmax) with respect to A_k, and keeps the positive part of the sum:
//
//	heat(i, j) = ReLU(Σ_k α_k A_k(i, j))
//
// With the pooling in between, ∂y/∂A_k(i, j) = g_k / (rows·cols) everywhere,
// where g is the gradient of y with respect to the pooled features (which
// head.LogitGradient computes), so α_k = g_k / (rows·cols). Heatmap returns
// the map divided by its maximum, in [0, 1], as Keras' example does (all
// zero where no location supports the class, where Keras' would divide by
// zero). With a linear head (no hidden layers) this is the class activation
// map (CAM) of Zhou et al.: g is then the class's column of the kernel.
//
// # The picture
//
// Overlay draws the map over the image a person sees: resized bilinearly
// (half-pixel centres) to the region of the image the network was shown
// (all of it, or the centred crop of crop_to_aspect_ratio), coloured with
// the jet colour map (blue for 0, red for 1) and blended over the image;
// what lies outside that region, which the network never saw, is dimmed.
package gradcam
