//! The adapter's device memory, where the backend tells it (the pool's default cap).

/// Bytes of the largest device-local memory heap, on Vulkan; `None` elsewhere.
pub(crate) fn device_memory(adapter: &wgpu::Adapter) -> Option<u64> {
    #[cfg(any(target_os = "linux", target_os = "windows", target_os = "android"))]
    {
        // SAFETY: reads the physical device's memory properties through the adapter's own
        // live instance; nothing is created or destroyed through the raw handles.
        let hal = unsafe { adapter.as_hal::<wgpu::hal::api::Vulkan>() }?;
        let instance = hal.shared_instance().raw_instance();
        let props =
            unsafe { instance.get_physical_device_memory_properties(hal.raw_physical_device()) };
        // VK_MEMORY_HEAP_DEVICE_LOCAL_BIT is bit 0.
        props.memory_heaps[..props.memory_heap_count as usize]
            .iter()
            .filter(|h| h.flags.as_raw() & 1 != 0)
            .map(|h| h.size)
            .max()
    }
    #[cfg(not(any(target_os = "linux", target_os = "windows", target_os = "android")))]
    {
        let _ = adapter;
        None
    }
}
